//! The desks: which service serves which, and the API route whose
//! permission makes somebody a person of the desk.

/// One service's desk.
#[derive(Debug)]
pub struct Desk {
    /// The service that serves it.
    pub service: &'static str,
    /// `(route, method)` of the service's policy that a person of the desk
    /// must be allowed today to sign in and to stay signed in.
    pub entry: (&'static str, &'static str),
    pub title_de: &'static str,
    pub title_en: &'static str,
}

/// The loan officers' desk on the market service.
pub static MARKET: Desk = Desk {
    service: "market",
    entry: ("/v1/cases", "POST"),
    title_de: "Markt",
    title_en: "Market",
};

/// The credit analysts' desk on the back-office service (sign-in only so
/// far; its pages come with the back-office console).
pub static BACKOFFICE: Desk = Desk {
    service: "backoffice",
    entry: ("/v1/cases/{id}/second-vote", "POST"),
    title_de: "Marktfolge",
    title_en: "Back office",
};

impl Desk {
    /// The desk `service` serves, if it has one yet.
    pub fn of(service: &str) -> Option<&'static Desk> {
        [&MARKET, &BACKOFFICE]
            .into_iter()
            .find(|desk| desk.service == service)
    }

    pub fn title(&self, lang: crate::i18n::Lang) -> &'static str {
        match lang {
            crate::i18n::Lang::De => self.title_de,
            crate::i18n::Lang::En => self.title_en,
        }
    }
}
