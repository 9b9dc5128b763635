//! Part 3 chapter 17: Hash/HMAC/Event Sequences.

pub mod event_sequence_complete;
pub mod hash_sequence_start;
pub mod hmac_start;
pub mod sequence_complete;
pub mod sequence_update;
