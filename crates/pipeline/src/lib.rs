//! Media sessions for tincan (issue 8, in progress).
