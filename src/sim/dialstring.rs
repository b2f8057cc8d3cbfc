//! Parsing `originate` arguments the way FreeSWITCH reads them.

/// A parsed `originate <dialstring> <exten> [dialplan] [context]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// `{…}` and `[…]` variables, in order.
    pub vars: Vec<(String, String)>,
    pub endpoint: Endpoint,
    pub extension: String,
    pub dialplan: String,
    pub context: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Gateway {
        gateway: String,
        number: String,
    },
    /// Anything else (`user/…`, `loopback/…`): not simulated.
    Other(String),
}

/// Why an originate command could not be parsed (`-USAGE` in FreeSWITCH).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>] ({0})")]
pub struct UsageError(pub String);

/// Split `k=v,k2=v2`, honouring `\,` escapes and `'…'` quoting.
fn parse_vars(s: &str, out: &mut Vec<(String, String)>) {
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    let mut items = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            '\'' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    for item in items {
        if let Some((k, v)) = item.split_once('=') {
            if !k.trim().is_empty() {
                out.push((k.trim().to_string(), v.to_string()));
            }
        }
    }
}

/// Parse the argument string of `originate`.
pub fn parse(args: &str) -> Result<Originate, UsageError> {
    let args = args.trim();
    let mut rest = args;
    let mut vars = Vec::new();
    // Leading variable blocks: {global} then [per-leg], possibly several.
    loop {
        let (open, close) = match rest.chars().next() {
            Some('{') => ('{', '}'),
            Some('[') => ('[', ']'),
            Some('<') => ('<', '>'),
            _ => break,
        };
        let _ = open;
        let end = rest.find(close).ok_or_else(|| UsageError(format!("unterminated {open}")))?;
        parse_vars(&rest[1..end], &mut vars);
        rest = &rest[end + 1..];
    }
    let mut parts = rest.split_whitespace();
    let url = parts.next().ok_or_else(|| UsageError("missing call url".into()))?;
    let extension = parts.next().ok_or_else(|| UsageError("missing extension".into()))?.to_string();
    let dialplan = parts.next().unwrap_or("XML").to_string();
    let context = parts.next().unwrap_or("default").to_string();
    let endpoint = match url.strip_prefix("sofia/gateway/") {
        Some(gw) => {
            let (gateway, number) =
                gw.split_once('/').ok_or_else(|| UsageError(format!("{url}: missing number after gateway")))?;
            if gateway.is_empty() || number.is_empty() {
                return Err(UsageError(format!("{url}: empty gateway or number")));
            }
            Endpoint::Gateway { gateway: gateway.to_string(), number: number.to_string() }
        }
        None => Endpoint::Other(url.to_string()),
    };
    Ok(Originate { vars, endpoint, extension, dialplan, context })
}

impl Originate {
    pub fn var(&self, k: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fixture_dial_string() {
        let o = parse("{origination_uuid=5ca1ab1e-0000-4000-8000-00000000000a,originate_timeout=8,origination_caller_id_number=300708}sofia/gateway/sipp/18651683344 robot XML default").expect("parses");
        assert_eq!(o.var("originate_timeout"), Some("8"));
        assert_eq!(o.endpoint, Endpoint::Gateway { gateway: "sipp".into(), number: "18651683344".into() });
        assert_eq!((o.extension.as_str(), o.dialplan.as_str(), o.context.as_str()), ("robot", "XML", "default"));
    }

    #[test]
    fn leg_vars_escapes_and_errors() {
        let o = parse("{a=1}[b=x\\,y,c='p,q']sofia/gateway/gw/100 robot").expect("parses");
        assert_eq!(o.var("b"), Some("x,y"));
        assert_eq!(o.var("c"), Some("p,q"));
        assert_eq!(o.context, "default");
        assert!(parse("{a=1 sofia/gateway/gw/1 robot").is_err());
        assert!(parse("sofia/gateway/gw/1").is_err());
        assert!(parse("").is_err());
    }
}
