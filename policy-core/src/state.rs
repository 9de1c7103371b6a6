//! Azure's prefix validation states: a leaf, shared by the document, the packed
//! encoding and the classifier.

use core::fmt;
use serde::{Deserialize, Serialize};

/// Azure's `prefixValidationState` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PrefixState {
    /// No validation has happened.
    None,
    /// The prefix failed validation as invalid.
    Invalid,
    /// Validated: the customer owns the prefix.
    Verified,
    /// Validation failed.
    Failed,
    /// Validation is in progress.
    Pending,
    /// Validated with a warning.
    Warning,
    /// The state is unknown.
    Unknown,
}

impl PrefixState {
    /// Every state, as Azure spells it.
    pub const ALL: [PrefixState; 7] = [
        PrefixState::None,
        PrefixState::Invalid,
        PrefixState::Verified,
        PrefixState::Failed,
        PrefixState::Pending,
        PrefixState::Warning,
        PrefixState::Unknown,
    ];

    /// Azure's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrefixState::None => "None",
            PrefixState::Invalid => "Invalid",
            PrefixState::Verified => "Verified",
            PrefixState::Failed => "Failed",
            PrefixState::Pending => "Pending",
            PrefixState::Warning => "Warning",
            PrefixState::Unknown => "Unknown",
        }
    }

    /// Parses Azure's spelling (exact case).
    pub fn from_name(s: &str) -> Option<PrefixState> {
        PrefixState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub(crate) const fn index(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for PrefixState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
