//! Language detection (whatlang), reported as ISO 639-1 codes.

use weir_guest::Error;
use whatlang::Lang;

/// A configured detector.
pub struct Detector {
    inner: whatlang::Detector,
    min_confidence: f64,
}

impl Detector {
    /// `languages`: ISO 639-1 or 639-3 codes to choose from (all when `None`).
    pub fn new(languages: Option<Vec<&str>>, min_confidence: f64) -> Result<Self, Error> {
        let inner = match languages {
            None => whatlang::Detector::new(),
            Some(codes) => {
                let langs = codes
                    .into_iter()
                    .map(|code| {
                        let code = code.to_lowercase();
                        Lang::all()
                            .iter()
                            .copied()
                            .find(|l| l.code() == code || iso639_1(*l) == code)
                            .ok_or_else(|| {
                                Error::new(format!(
                                    "config key \"languages\": unknown language {code:?}"
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if langs.is_empty() {
                    return Err(Error::new("config key \"languages\" names no language"));
                }
                whatlang::Detector::with_allowlist(langs)
            }
        };
        Ok(Self {
            inner,
            min_confidence,
        })
    }

    /// The language of `text`, if detected confidently enough.
    pub fn detect(&self, text: &str) -> Option<&'static str> {
        let info = self.inner.detect(text)?;
        (info.confidence() >= self.min_confidence).then(|| iso639_1(info.lang()))
    }
}

/// A language as a record reports it, as the lower-cased primary subtag
/// (`en-GB` → `en`, `PT` → `pt`); `None` when it names no language: empty,
/// not 2–3 ASCII letters, `und`, `zxx` (no linguistic content) or one of the
/// private-use codes `qaa`–`qtz` (X's `qme`, `qht`, …: media only, hashtags
/// only).
pub fn normalize(reported: &str) -> Option<String> {
    let primary = reported
        .trim()
        .split(['-', '_'])
        .next()?
        .to_ascii_lowercase();
    let letters =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let private = primary.len() == 3 && ("qaa".."qu").contains(&primary.as_str());
    (letters && !private && primary != "und" && primary != "zxx").then_some(primary)
}

/// ISO 639-1 for whatlang's languages (its codes are ISO 639-3).
pub fn iso639_1(lang: Lang) -> &'static str {
    match lang.code() {
        "epo" => "eo",
        "eng" => "en",
        "rus" => "ru",
        "cmn" => "zh",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ben" => "bn",
        "fra" => "fr",
        "deu" => "de",
        "ukr" => "uk",
        "kat" => "ka",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "heb" => "he",
        "yid" => "yi",
        "pol" => "pl",
        "amh" => "am",
        "jav" => "jv",
        "kor" => "ko",
        "nob" => "nb",
        "dan" => "da",
        "swe" => "sv",
        "fin" => "fi",
        "tur" => "tr",
        "nld" => "nl",
        "hun" => "hu",
        "ces" => "cs",
        "ell" => "el",
        "bul" => "bg",
        "bel" => "be",
        "mar" => "mr",
        "kan" => "kn",
        "ron" => "ro",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "mkd" => "mk",
        "lit" => "lt",
        "lav" => "lv",
        "est" => "et",
        "tam" => "ta",
        "vie" => "vi",
        "urd" => "ur",
        "tha" => "th",
        "guj" => "gu",
        "uzb" => "uz",
        "pan" => "pa",
        "aze" => "az",
        "ind" => "id",
        "tel" => "te",
        "pes" => "fa",
        "mal" => "ml",
        "ori" => "or",
        "mya" => "my",
        "nep" => "ne",
        "sin" => "si",
        "khm" => "km",
        "tuk" => "tk",
        "aka" => "ak",
        "zul" => "zu",
        "sna" => "sn",
        "afr" => "af",
        "lat" => "la",
        "slk" => "sk",
        "cat" => "ca",
        "tgl" => "tl",
        "hye" => "hy",
        other => other,
    }
}
