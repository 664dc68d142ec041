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
    /// Where `/` sends a signed-in person (the desk's first page), once the
    /// desk has pages; without, `/` says the desk is coming.
    pub home: Option<&'static str>,
    pub title_de: &'static str,
    pub title_en: &'static str,
}

/// The loan officers' desk on the market service.
pub static MARKET: Desk = Desk {
    service: "market",
    entry: ("/v1/cases", "POST"),
    home: Some("/console/cases"),
    title_de: "Markt",
    title_en: "Market",
};

/// The credit analysts' desk on the back-office service.
pub static BACKOFFICE: Desk = Desk {
    service: "backoffice",
    entry: ("/v1/cases/{id}/second-vote", "POST"),
    home: Some("/console/queue"),
    title_de: "Marktfolge",
    title_en: "Back office",
};

/// The risk controllers' desk on the risk-control service (internal audit
/// may read it too, as its policy allows).
pub static RISK: Desk = Desk {
    service: "risk",
    entry: ("/v1/limits", "GET"),
    home: Some("/console/limits"),
    title_de: "Risikocontrolling",
    title_en: "Risk control",
};

/// The internal auditors' desk on the audit service.
pub static AUDIT: Desk = Desk {
    service: "audit",
    entry: ("/v1/events", "GET"),
    home: Some("/console/events"),
    title_de: "Interne Revision",
    title_en: "Internal audit",
};

/// The user administrators' desk on the admin service.
pub static ADMIN: Desk = Desk {
    service: "admin",
    entry: ("/v1/staff", "GET"),
    home: Some("/console/staff"),
    title_de: "Benutzerverwaltung",
    title_en: "User administration",
};

impl Desk {
    /// The desk `service` serves, if it has one yet.
    pub fn of(service: &str) -> Option<&'static Desk> {
        [&MARKET, &BACKOFFICE, &RISK, &AUDIT, &ADMIN]
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
