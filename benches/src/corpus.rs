//! Tweet-shaped records in the shape of the `tweets` input topic
//! (docs/schema.md), generated deterministically: the same `n` always gives
//! the same bytes, so runs are comparable.
//!
//! Texts mix what text-clean and enrich have work to do on: `@mentions`,
//! `#hashtags`, URLs, HTML entities, an occasional `RT @user:` prefix and
//! some markup. The average record is ~400 bytes.

/// splitmix64: small, fast, good enough to vary a corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "game",
    "tonight",
    "was",
    "absolutely",
    "wild",
    "and",
    "I",
    "can't",
    "believe",
    "we",
    "won",
    "again",
    "coffee",
    "first",
    "then",
    "work",
    "new",
    "release",
    "is",
    "out",
    "check",
    "it",
    "city",
    "council",
    "votes",
    "on",
    "budget",
    "rain",
    "all",
    "week",
    "long",
    "harbor",
    "hawks",
    "cup",
    "final",
    "tickets",
    "sale",
    "Monday",
    "library",
    "closes",
    "early",
    "Fridays",
    "walk",
    "good",
    "book",
    "happy",
    "dog",
    "perfect",
    "Sunday",
    "traffic",
    "downtown",
    "is",
    "terrible",
    "today",
    "great",
    "show",
    "last",
    "night",
    "band",
    "played",
    "for",
    "three",
    "hours",
    "weather",
    "looks",
    "fine",
    "for",
    "the",
    "marathon",
    "stocks",
    "rally",
    "as",
    "inflation",
    "cools",
    "team",
    "needs",
    "a",
    "new",
    "coach",
];
const USERS: &[&str] = &[
    "quietcoder",
    "stats_guy_99",
    "coffee_cortex",
    "the_real_jojo",
    "rovers_til_i_die",
    "nightowl_dev",
    "harbor_hawks",
    "city_desk",
    "marathon_mia",
    "bookworm_bex",
    "weather_wally",
    "dog_of_the_day",
];
const TAGS: &[&str] = &[
    "championship",
    "coffee",
    "rust",
    "weekend",
    "news",
    "music",
    "rain",
    "budget",
    "marathon",
    "books",
];
const DOMAINS: &[&str] = &[
    "photos.example",
    "news.example",
    "t.example",
    "www.blog.example",
    "video.example",
];
const EXTRAS: &[&str] = &[
    " &amp; more",
    " &quot;unreal&quot;",
    " <b>wow</b>",
    " it&#39;s true",
    " &lt;3",
    " 📍",
    " 🎉",
    "",
];

/// The `n`th record: `(key, value)`, key = the tweet id.
pub fn tweet(n: u64) -> (String, String) {
    let mut r = Rng(n.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let id = 2_123_400_000_000_000_000u64 + n;
    let user = r.pick(USERS);
    let mut text = String::with_capacity(200);
    if r.below(5) == 0 {
        text.push_str("RT @");
        text.push_str(r.pick(USERS));
        text.push_str(": ");
    }
    if r.below(2) == 0 {
        text.push('@');
        text.push_str(r.pick(USERS));
        text.push(' ');
    }
    let words = 12 + r.below(12);
    for i in 0..words {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(r.pick(WORDS));
    }
    text.push_str(r.pick(EXTRAS));
    for _ in 0..r.below(3) {
        text.push_str(" #");
        text.push_str(r.pick(TAGS));
    }
    if r.below(3) != 0 {
        text.push_str(" https://");
        text.push_str(r.pick(DOMAINS));
        text.push_str("/p/");
        text.push_str(&(r.next() % 1_000_000).to_string());
    }
    let value = format!(
        concat!(
            r#"{{"id":"{id}","text":{text},"created_at":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z","lang":"en","#,
            r#""user":{{"id":"{uid}","screen_name":"{user}","followers_count":{followers}}},"source":"bench","#,
            r#""url":"https://social.example/{user}/status/{id}","retweet_count":{rt},"like_count":{likes}}}"#
        ),
        id = id,
        text = serde_json::to_string(&text).expect("a string serialises"),
        day = 1 + r.below(28),
        h = r.below(24),
        m = r.below(60),
        s = r.below(60),
        uid = 10_000_000 + r.below(200_000),
        user = user,
        followers = r.below(100_000),
        rt = r.below(500),
        likes = r.below(5000),
    );
    (id.to_string(), value)
}

/// Records `0..n`.
/// Tweet `n` padded to about `size` bytes with a nested `extra` value no
/// shipped module reads (for costs against document size); the plain
/// tweet when it is already that long.
pub fn padded_tweet(n: u64, size: usize) -> Vec<u8> {
    let (_, tweet) = tweet(n);
    if tweet.len() + 40 >= size {
        return tweet.into_bytes();
    }
    let mut items = Vec::new();
    let mut len = tweet.len() + 20;
    let mut i = 0;
    while len < size {
        let item = format!(
            r#"{{"n":{i},"label":"item {i} of the padding","flags":[true,false,null],"score":{}.5}}"#,
            i * 7
        );
        len += item.len() + 1;
        items.push(item);
        i += 1;
    }
    let body = tweet.strip_suffix('}').expect("a tweet is an object");
    format!(r#"{body},"extra":{{"items":[{}]}}}}"#, items.join(",")).into_bytes()
}

pub fn tweets(n: u64) -> impl Iterator<Item = (String, String)> {
    (0..n).map(tweet)
}
