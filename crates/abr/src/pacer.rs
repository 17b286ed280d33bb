//! The pacer (issue 7, in progress).
