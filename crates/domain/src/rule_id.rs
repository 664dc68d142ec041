//! The rulebook's rule ids as one closed vocabulary: a refusal, a decision
//! check, a risk finding and an audit event name the rule they are about
//! with a [`RuleId`], so a misspelt id does not compile.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! rule_ids {
    ($($id:ident),+ $(,)?) => {
        /// A rule of the requirements: segregation (S), votes (V), risk (R),
        /// audit (A) and the credit after its first decision (L).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $($id),+
        }

        impl RuleId {
            /// Every rule id, in rulebook order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$id),+];

            /// The id as the rulebook writes it, e.g. `"V1"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$id => stringify!($id)),+
                }
            }
        }
    };
}

rule_ids!(
    S1, S2, S3, S4, S5, S6, S7, S8, S9, //
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, //
    R1, R2, R3, R4, R5, R6, R7, R8, R9, //
    A1, A2, A3, A4, A5, A6, A7, //
    L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12,
);

/// A text that is not a rule id of the rulebook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rule id of the rulebook")]
pub struct UnknownRuleId(pub String);

impl FromStr for RuleId {
    type Err = UnknownRuleId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownRuleId(s.to_owned()))
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_through_text_and_json() {
        assert_eq!(RuleId::ALL.len(), 9 + 11 + 9 + 7 + 12);
        for id in RuleId::ALL {
            assert_eq!(id.as_str().parse::<RuleId>(), Ok(*id));
            let json = serde_json::to_string(id).unwrap();
            assert_eq!(json, format!("\"{id}\""));
            assert_eq!(serde_json::from_str::<RuleId>(&json).unwrap(), *id);
        }
    }

    #[test]
    fn texts_outside_the_rulebook_are_refused() {
        for text in ["", "V0", "V12", "S10", "v1", " V1", "X1", "L13", "R"] {
            assert!(text.parse::<RuleId>().is_err(), "{text:?}");
        }
    }
}
