//! Hashtags and mentions in captions, stored normalised (lower case, each once, in order
//! of first appearance).

/// `#tag`: letters, digits and `_`, 1–100 of them, lower-cased.
pub fn hashtags(text: &str) -> Vec<String> {
    tokens(text, '#', |c| c.is_alphanumeric() || c == '_', 100)
}

/// `@username`: the username alphabet (`[a-z0-9._]`, 3–30), lower-cased.
pub fn mentions(text: &str) -> Vec<String> {
    tokens(
        text,
        '@',
        |c| c.is_ascii_alphanumeric() || c == '.' || c == '_',
        30,
    )
    .into_iter()
    .map(|m| m.trim_end_matches('.').to_owned())
    .filter(|m| m.len() >= 3)
    .collect()
}

/// A hashtag from a path, normalised as captions are; `None` when it is not one.
pub fn normalise_tag(raw: &str) -> Option<String> {
    let tag = raw.strip_prefix('#').unwrap_or(raw);
    let valid = !tag.is_empty()
        && tag.chars().count() <= 100
        && tag.chars().all(|c| c.is_alphanumeric() || c == '_');
    valid.then(|| tag.to_lowercase())
}

fn tokens(text: &str, sigil: char, allowed: impl Fn(char) -> bool, max: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // A sigil starts a token only at the start or after a non-word character, so
        // emails (`a@b.c`) and `C#` are not tokens.
        let starts = chars[i] == sigil && (i == 0 || !(allowed(chars[i - 1])));
        if starts {
            let body: String = chars[i + 1..].iter().take_while(|c| allowed(**c)).collect();
            let len = body.chars().count();
            if len > 0 && len <= max {
                let token = body.to_lowercase();
                if !found.contains(&token) {
                    found.push(token);
                }
            }
            i += 1 + len;
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_are_found_normalised_and_once() {
        assert_eq!(
            hashtags("Sunset #Beach #beach, #café_2 and#not C# #"),
            vec!["beach", "café_2"]
        );
    }

    #[test]
    fn mentions_use_the_username_alphabet() {
        assert_eq!(
            mentions("hi @Alice and @bob.smith. mail me at x@y.com @ab"),
            vec!["alice", "bob.smith"]
        );
    }

    #[test]
    fn tags_in_paths_are_validated() {
        assert_eq!(normalise_tag("Beach"), Some("beach".into()));
        assert_eq!(normalise_tag("#beach"), Some("beach".into()));
        assert_eq!(normalise_tag("be ach"), None);
        assert_eq!(normalise_tag(""), None);
    }
}
