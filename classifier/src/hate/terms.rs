//! Term lists that map hate-speech decisions onto expert.ai's subcategories.
//!
//! The hatesonar model only distinguishes hate / offensive / neither. When a
//! text is classified as hate, its driving terms (the top contributing
//! features) are looked up here; a subcategory of "2000 Discrimination and
//! Harassment" is reported only if one of them is listed. The lists are
//! deliberately small: slurs and terms that the Davidson et al. (2017) data
//! associates with the target group, restricted to single tokens as the
//! model sees them. Terms that are generic insults in that data ("bitch",
//! "hoe") are not listed, so they never imply a subcategory.

/// One expert.ai hate-speech subcategory and the terms that imply it.
#[derive(Debug, Clone, Copy)]
pub struct Subcategory {
    pub id: &'static str,
    pub label: &'static str,
    pub terms: &'static [&'static str],
}

/// Subcategories of "2000 Discrimination and Harassment", in id order.
pub const SUBCATEGORIES: &[Subcategory] = &[
    Subcategory {
        id: "2100",
        label: "Racism",
        terms: &[
            "nigger", "niggers", "nigga", "niggas", "niggaz", "coon", "coons", "spic", "spics",
            "wetback", "wetbacks", "beaner", "beaners", "chink", "chinks", "gook", "cracker",
            "crackers", "whitey",
        ],
    },
    Subcategory {
        id: "2200",
        label: "Sexism",
        terms: &["whore", "whores", "slut", "sluts", "cunt", "cunts"],
    },
    Subcategory {
        id: "2300",
        label: "Ableism",
        terms: &["retard", "retards", "retarded", "spaz"],
    },
    Subcategory {
        id: "2400",
        label: "Religious Hatred",
        terms: &[
            "jew", "jews", "kike", "kikes", "muzzie", "muzzies", "raghead",
        ],
    },
    Subcategory {
        id: "2500",
        label: "Homophobia",
        terms: &[
            "faggot", "faggots", "fag", "fags", "dyke", "dykes", "queer", "queers", "homo",
            "homos", "tranny",
        ],
    },
    Subcategory {
        id: "2600",
        label: "Classism",
        terms: &["redneck", "rednecks", "hillbilly", "hillbillies"],
    },
    Subcategory {
        id: "2700",
        label: "Body Shaming",
        terms: &["fat", "ugly"],
    },
];

/// Subcategories implied by any of `terms`, in id order.
pub fn subcategories_for(terms: &[&str]) -> Vec<&'static Subcategory> {
    SUBCATEGORIES
        .iter()
        .filter(|sub| terms.iter().any(|t| sub.terms.contains(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_terms_are_model_vocabulary() {
        let model = crate::hate::LinearModel::embedded();
        for sub in SUBCATEGORIES {
            for term in sub.terms {
                assert!(
                    model.term(term).is_some(),
                    "{term} ({}) is not in the vocabulary",
                    sub.label
                );
            }
        }
    }

    #[test]
    fn lookup_by_term() {
        let ids: Vec<_> = subcategories_for(&["faggot", "kill", "nigger"])
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["2100", "2500"]);
        assert!(subcategories_for(&["bitch"]).is_empty());
    }
}
