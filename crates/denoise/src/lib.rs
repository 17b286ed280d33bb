//! Voice processing for tincan (being built): noise suppression, voice activity, levels
//! and automatic gain control.
