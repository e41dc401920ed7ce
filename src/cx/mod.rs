//! The Cx application (TS 29.228/29.229).

pub mod user_data;
