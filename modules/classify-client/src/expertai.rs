//! expert.ai NL API v2: the request, the response envelope, and the
//! documented shapes of the sentiment and hate-speech resources.
//!
//! Hate speech (docs.expert.ai, "Hate speech detector output"): each item
//! of `data.categories` is a detected category with `id`, `label`,
//! `hierarchy` (the labels from the farthest ancestor to the category),
//! `namespace`, `score` (the *cumulative* score the rules attributed to
//! the category: 0 to unbounded, not a probability), `frequency` (that
//! score as a percentage of the sum of all listed categories' scores),
//! `winner` (the categories the engine found particularly relevant) and
//! `positions` (the text blocks that contributed: character offsets,
//! zero-based, end exclusive). No hate speech: no categories. The taxonomy:
//! 1000 Personal Insult; 2000 Discrimination and Harassment (2100 Racism,
//! 2200 Sexism, 2300 Ableism, 2400 Religious Hatred, 2500 Homophobia, 2600
//! Classism, 2700 Body Shaming); 3000 Threat and Violence.

use weir_guest::serde_json::{Value, json};

/// The content type expert.ai asks for.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// `{"document": {"text": ...}}`.
pub fn request(text: &str) -> Value {
    json!({"document": {"text": text}})
}

/// `data` of a successful response, and the model to record: `expert.ai
/// {data.version}` unless the module was configured with its own name.
pub fn data<'a>(v: &'a Value, model: &str) -> Result<(&'a Value, String), String> {
    if v["success"] == json!(false) {
        return Err(format!("the service reported failure: {}", v["errors"]));
    }
    let data = &v["data"];
    let model = match (model, data["version"].as_str()) {
        ("expert.ai", Some(version)) if !version.is_empty() => format!("expert.ai {version}"),
        (m, _) => m.to_owned(),
    };
    Ok((data, model))
}

/// `data.sentiment`: `overall` −100..100, `positivity` 0..100,
/// `negativity` −100..0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sentiment {
    pub overall: f64,
    pub positivity: f64,
    pub negativity: f64,
}

impl Sentiment {
    pub fn parse(data: &Value) -> Result<Self, String> {
        let s = &data["sentiment"];
        let num = |k: &str| {
            s[k].as_f64()
                .ok_or_else(|| format!("no number data.sentiment.{k}"))
        };
        Ok(Self {
            overall: num("overall")?,
            positivity: num("positivity")?,
            negativity: num("negativity")?,
        })
    }
}

/// The top of the hate-speech taxonomy a category belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// 1000
    PersonalInsult,
    /// 2000 and its subcategories 2100..2700
    DiscriminationAndHarassment,
    /// 3000
    ThreatAndViolence,
}

impl Branch {
    /// The branch of a category id (`"2200"` → discrimination); `None` for
    /// an id outside the documented taxonomy.
    pub fn of_id(id: &str) -> Option<Self> {
        if id.len() != 4 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match id.as_bytes()[0] {
            b'1' => Some(Self::PersonalInsult),
            b'2' => Some(Self::DiscriminationAndHarassment),
            b'3' => Some(Self::ThreatAndViolence),
            _ => None,
        }
    }

    /// The branch whose top category has this label.
    pub fn of_label(label: &str) -> Option<Self> {
        [
            Self::PersonalInsult,
            Self::DiscriminationAndHarassment,
            Self::ThreatAndViolence,
        ]
        .into_iter()
        .find(|b| b.label().eq_ignore_ascii_case(label))
    }

    /// The top category's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::PersonalInsult => "Personal Insult",
            Self::DiscriminationAndHarassment => "Discrimination and Harassment",
            Self::ThreatAndViolence => "Threat and Violence",
        }
    }
}

/// One item of `data.categories`.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub id: String,
    pub label: String,
    /// Labels from the farthest ancestor to the category.
    pub hierarchy: Vec<String>,
    /// Cumulative score (unbounded).
    pub score: f64,
    /// Percent of the sum of all listed categories' scores.
    pub frequency: f64,
    pub winner: bool,
    /// Character offsets, end exclusive.
    pub positions: Vec<(usize, usize)>,
    /// From the id, else from the hierarchy's root.
    pub branch: Option<Branch>,
}

impl Category {
    fn parse(c: &Value) -> Result<Self, String> {
        let id = c["id"]
            .as_str()
            .ok_or_else(|| format!("category without an id: {c}"))?
            .to_owned();
        let label = c["label"].as_str().unwrap_or(&id).to_owned();
        let hierarchy: Vec<String> = match c["hierarchy"].as_array() {
            Some(h) => h
                .iter()
                .map(|l| l.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("category with a non-string hierarchy: {c}"))?,
            None => vec![label.clone()],
        };
        let number = |k: &str| {
            c[k].as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("category without a non-negative number {k:?}: {c}"))
        };
        let positions = c["positions"].as_array().into_iter().flatten();
        let positions = positions
            .filter_map(|p| Some((p["start"].as_u64()? as usize, p["end"].as_u64()? as usize)))
            .collect();
        let branch =
            Branch::of_id(&id).or_else(|| hierarchy.first().and_then(|l| Branch::of_label(l)));
        Ok(Self {
            score: number("score")?,
            frequency: number("frequency")?,
            winner: c["winner"].as_bool().unwrap_or(false),
            id,
            label,
            hierarchy,
            positions,
            branch,
        })
    }

    /// The category's path with its branch's top label first, even when
    /// `hierarchy` starts below it (the docs' own example lists Sexism
    /// with the hierarchy `["Sexism"]`).
    pub fn path(&self) -> Vec<String> {
        let mut path = self.hierarchy.clone();
        if let Some(top) = self.branch.map(Branch::label)
            && path.first().is_none_or(|first| first != top)
        {
            path.insert(0, top.to_owned());
        }
        path
    }
}

/// `data` of `detect/hate-speech`: the categories, strongest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HateSpeech {
    /// Winners first, then by frequency (descending); ties keep the
    /// response's order.
    pub categories: Vec<Category>,
}

impl HateSpeech {
    pub fn parse(data: &Value) -> Result<Self, String> {
        let categories = data["categories"]
            .as_array()
            .ok_or("no data.categories array")?;
        let mut categories = categories
            .iter()
            .map(Category::parse)
            .collect::<Result<Vec<_>, _>>()?;
        categories.sort_by(|a, b| {
            b.winner
                .cmp(&a.winner)
                .then(b.frequency.total_cmp(&a.frequency))
        });
        Ok(Self { categories })
    }

    /// Any category at all means hate speech was detected.
    pub fn detected(&self) -> bool {
        !self.categories.is_empty()
    }

    /// Each category's share of the listed categories' frequencies (0..1,
    /// summing to 1), by `group` of its branch: the strength of each kind
    /// among the detected ones.
    pub fn shares<const N: usize>(&self, group: impl Fn(Option<Branch>) -> usize) -> [f64; N] {
        let mut shares = [0.0; N];
        let total: f64 = self.categories.iter().map(|c| c.frequency).sum();
        for c in &self.categories {
            shares[group(c.branch)] += if total > 0.0 {
                c.frequency / total
            } else {
                1.0 / self.categories.len() as f64
            };
        }
        shares
    }

    /// The group the winners point to: the one with the largest frequency
    /// among the winning categories (among all when none is flagged); ties
    /// go to the lower group index. `None` when nothing was detected.
    pub fn winning<const N: usize>(
        &self,
        group: impl Fn(Option<Branch>) -> usize,
    ) -> Option<usize> {
        let any_winner = self.categories.iter().any(|c| c.winner);
        let mut sums = [0.0f64; N];
        let mut seen = [false; N];
        for c in self.categories.iter().filter(|c| c.winner || !any_winner) {
            let g = group(c.branch);
            sums[g] += c.frequency;
            seen[g] = true;
        }
        (0..N)
            .filter(|g| seen[*g])
            .fold(None, |best: Option<usize>, g| match best {
                Some(b) if sums[b] >= sums[g] => Some(b),
                _ => Some(g),
            })
    }

    /// The labels on the categories' paths, winners' first, each once.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        for label in self.categories.iter().flat_map(Category::path) {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        labels
    }

    /// The words of `text` at the winning categories' positions, in text
    /// order, each once.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut spans: Vec<(usize, usize)> = self
            .categories
            .iter()
            .filter(|c| c.winner)
            .flat_map(|c| c.positions.iter().copied())
            .collect();
        spans.sort_unstable();
        let mut terms: Vec<String> = Vec::new();
        for (start, end) in spans {
            let term: String = text
                .chars()
                .skip(start)
                .take(end.saturating_sub(start))
                .collect();
            if !term.is_empty() && !terms.contains(&term) {
                terms.push(term);
            }
        }
        terms
    }
}
