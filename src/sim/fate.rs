//! Simulated callees: what happens when a number is dialled, chosen
//! deterministically from the simulator's seed and the number.

use serde::{Deserialize, Serialize};

/// How an answered callee behaves in conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Persona {
    /// Interested: agrees at every step.
    Interested,
    /// Says no.
    Refuser,
    /// Busy right now.
    Busy,
    /// Asks knowledge-base questions, then agrees.
    Asker,
    /// Says nothing matching.
    Mumbler,
    /// Never speaks.
    Silent,
    /// Talks over the robot (barge-in).
    Interrupter,
    /// Hangs up in the middle of the robot's second sentence.
    HangsUp,
}

impl Persona {
    /// The lines this callee says, turn by turn.
    pub fn lines(self) -> &'static [&'static str] {
        match self {
            Persona::Interested => &["可以，你说吧", "我有兴趣，你介绍一下", "好的，没问题", "好的，谢谢"],
            Persona::Refuser => &["不需要，谢谢", "不需要，不要再打了", "不要再打了"],
            Persona::Busy => &["我现在在开会，不方便"],
            Persona::Asker => &["你们是哪个公司的", "可以，多少钱一个月", "了解一下，感兴趣", "好的"],
            Persona::Mumbler => &["嗯嗯啊", "那个什么", "哦哦", "嗯哼"],
            Persona::Silent => &[],
            Persona::Interrupter => &["等一下，我有兴趣", "可以可以", "好的，你们加我吧"],
            Persona::HangsUp => &["喂？"],
        }
    }
}

/// What the network does with one originate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Answer(Persona),
    /// 486 Busy Here.
    Busy,
    /// 404 Not Found.
    NotFound,
    /// 480 Temporarily Unavailable.
    Unavailable,
    /// 603 Decline.
    Decline,
    /// Rings until `originate_timeout`.
    NoAnswer,
    /// 503 Service Unavailable.
    ServiceUnavailable,
    /// The gateway is down: nothing is sent, `-ERR GATEWAY_DOWN`.
    GatewayDown,
    /// Early media with a carrier announcement, then a failure response.
    Announcement(Announcement),
}

/// Carrier announcements heard on early media (空号检测).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Announcement {
    Empty,
    PoweredOff,
    Suspended,
    Arrears,
    CallInRestricted,
}

impl Announcement {
    pub fn text(self) -> &'static str {
        match self {
            Announcement::Empty => "您好，您拨打的号码是空号，请核对后再拨",
            Announcement::PoweredOff => "您好，您拨打的电话已关机",
            Announcement::Suspended => "您好，您拨打的电话已停机",
            Announcement::Arrears => "您拨打的用户已欠费",
            Announcement::CallInRestricted => "您拨打的用户已设置呼入限制",
        }
    }

    /// The SIP failure that follows the announcement.
    pub fn final_response(self) -> (u16, &'static str, &'static str, u16) {
        match self {
            Announcement::Empty => (404, "Not Found", "UNALLOCATED_NUMBER", 1),
            _ => (480, "Temporarily Unavailable", "NO_USER_RESPONSE", 18),
        }
    }
}

/// Relative weights of each fate. Every weight may be zero but one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FateMix {
    pub weights: Vec<(Fate, u32)>,
}

impl Default for FateMix {
    fn default() -> Self {
        use Announcement as A;
        use Persona as P;
        FateMix {
            weights: vec![
                (Fate::Answer(P::Interested), 14),
                (Fate::Answer(P::Refuser), 8),
                (Fate::Answer(P::Busy), 4),
                (Fate::Answer(P::Asker), 7),
                (Fate::Answer(P::Mumbler), 4),
                (Fate::Answer(P::Silent), 4),
                (Fate::Answer(P::Interrupter), 5),
                (Fate::Answer(P::HangsUp), 4),
                (Fate::Busy, 7),
                (Fate::NotFound, 4),
                (Fate::Unavailable, 4),
                (Fate::Decline, 4),
                (Fate::NoAnswer, 8),
                (Fate::ServiceUnavailable, 3),
                (Fate::GatewayDown, 2),
                (Fate::Announcement(A::Empty), 3),
                (Fate::Announcement(A::PoweredOff), 3),
                (Fate::Announcement(A::Suspended), 2),
                (Fate::Announcement(A::Arrears), 2),
                (Fate::Announcement(A::CallInRestricted), 2),
            ],
        }
    }
}

/// SplitMix64 over the seed and the number's bytes: stable across versions
/// and platforms, unlike `std`'s hasher.
pub fn hash(seed: u64, s: &str) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in s.bytes() {
        h = h.wrapping_add(u64::from(b)).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

impl FateMix {
    /// A named mix for the command line: `default`, or one fate for every
    /// number: `answer-<persona>` (interested, refuser, busy, asker, mumbler,
    /// silent, interrupter, hangs-up), `busy`, `not-found`, `unavailable`,
    /// `decline`, `no-answer`, `service-unavailable`, `gateway-down`,
    /// `announcement-<empty|powered-off|suspended|arrears|call-in-restricted>`.
    pub fn preset(name: &str) -> Option<FateMix> {
        use Announcement as A;
        use Persona as P;
        let one = |f: Fate| Some(FateMix { weights: vec![(f, 1)] });
        match name {
            "default" => Some(FateMix::default()),
            "busy" => one(Fate::Busy),
            "not-found" => one(Fate::NotFound),
            "unavailable" => one(Fate::Unavailable),
            "decline" => one(Fate::Decline),
            "no-answer" => one(Fate::NoAnswer),
            "service-unavailable" => one(Fate::ServiceUnavailable),
            "gateway-down" => one(Fate::GatewayDown),
            _ => {
                if let Some(p) = name.strip_prefix("answer-") {
                    let p = match p {
                        "interested" => P::Interested,
                        "refuser" => P::Refuser,
                        "busy" => P::Busy,
                        "asker" => P::Asker,
                        "mumbler" => P::Mumbler,
                        "silent" => P::Silent,
                        "interrupter" => P::Interrupter,
                        "hangs-up" => P::HangsUp,
                        _ => return None,
                    };
                    return one(Fate::Answer(p));
                }
                let a = match name.strip_prefix("announcement-")? {
                    "empty" => A::Empty,
                    "powered-off" => A::PoweredOff,
                    "suspended" => A::Suspended,
                    "arrears" => A::Arrears,
                    "call-in-restricted" => A::CallInRestricted,
                    _ => return None,
                };
                one(Fate::Announcement(a))
            }
        }
    }

    /// The fate of `number` under `seed`.
    pub fn fate(&self, seed: u64, number: &str) -> Fate {
        let total: u64 = self.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return Fate::Answer(Persona::Interested);
        }
        let mut x = hash(seed, number) % total;
        for (f, w) in &self.weights {
            let w = u64::from(*w);
            if x < w {
                return *f;
            }
            x -= w;
        }
        Fate::Answer(Persona::Interested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_are_deterministic_and_cover_the_mix() {
        let mix = FateMix::default();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..5000 {
            let n = format!("1380000{i:04}");
            assert_eq!(mix.fate(7, &n), mix.fate(7, &n));
            seen.insert(mix.fate(7, &n));
        }
        assert_eq!(seen.len(), mix.weights.len());
    }
}
