//! A deterministic, seeded, sans-IO network emulator (in progress: see issue 3).
