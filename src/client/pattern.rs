//! Topic patterns for `Consumer::subscribe_pattern`: a small glob, not a regex (the crate has
//! no regex dependency). `*` matches any run of characters (also none), `?` exactly one; every
//! other character matches itself. The whole name must match. Internal topics
//! (`__consumer_offsets`) never match, as with Kafka's `exclude.internal.topics`.

use crate::group::OFFSETS_TOPIC;

/// A compiled topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    pattern: Vec<char>,
}

impl TopicPattern {
    pub fn new(pattern: &str) -> Self {
        TopicPattern {
            pattern: pattern.chars().collect(),
        }
    }

    /// Whether `topic` matches the whole pattern.
    pub fn matches(&self, topic: &str) -> bool {
        if topic == OFFSETS_TOPIC {
            return false;
        }
        let name: Vec<char> = topic.chars().collect();
        glob(&self.pattern, &name)
    }
}

impl std::fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern.iter().collect::<String>())
    }
}

/// Iterative glob matching with one backtrack point (the last `*`): linear in practice,
/// O(pattern x name) at worst, no recursion.
fn glob(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::TopicPattern;

    #[test]
    fn globs_match_whole_names() {
        let orders = TopicPattern::new("orders-*");
        assert!(orders.matches("orders-eu"));
        assert!(orders.matches("orders-"));
        assert!(!orders.matches("orders"));
        assert!(!orders.matches("old-orders-eu"));
        let one = TopicPattern::new("t?-*-x");
        assert!(one.matches("t1-abc-x"));
        assert!(!one.matches("t12-abc-y"));
        assert!(TopicPattern::new("*").matches("anything"));
        assert!(!TopicPattern::new("*").matches("__consumer_offsets"));
        assert!(TopicPattern::new("a*b*c").matches("aXXbYYbc"));
        assert!(!TopicPattern::new("a*b*c").matches("aXXbYY"));
    }
}
