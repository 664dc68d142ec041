//! German and English: the language a browser asks for (`Accept-Language`,
//! or the `lang` query parameter), the console's texts in both, and the
//! German and English formats of amounts and dates.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// The console's languages; German is the default for a German bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    /// The first supported language in an `Accept-Language` header (quality
    /// values are ordered by the browser already); German if none is.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        for part in header.unwrap_or_default().split(',') {
            let tag = part.split(';').next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            if primary.eq_ignore_ascii_case("de") {
                return Lang::De;
            }
            if primary.eq_ignore_ascii_case("en") {
                return Lang::En;
            }
        }
        Lang::De
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    pub fn messages(self) -> &'static Messages {
        match self {
            Lang::De => &DE,
            Lang::En => &EN,
        }
    }

    /// `1.250.000,00 EUR` (German) or `1,250,000.00 EUR` (English).
    pub fn money(self, amount: Decimal, currency: &str) -> String {
        let (group, decimal) = match self {
            Lang::De => ('.', ','),
            Lang::En => (',', '.'),
        };
        let rounded = amount.round_dp(2);
        let text = format!("{:.2}", rounded.abs());
        let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), "00"));
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(digit);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        format!("{sign}{grouped}{decimal}{fraction} {currency}")
    }

    /// A number as typed, in the API's plain spelling (`1000000.00`): German
    /// `1.000.000,00` and English `1,000,000.00` are both understood; a single
    /// comma is the decimal comma in German, a thousands separator in English.
    pub fn plain_number(self, typed: &str) -> Option<String> {
        let text: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if text.is_empty()
            || text.len() > 40
            || !text
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        {
            return None;
        }
        let (whole, fraction) = match (text.rfind('.'), text.rfind(',')) {
            (Some(dot), Some(comma)) => {
                let (group, at) = if dot > comma {
                    (',', dot)
                } else {
                    ('.', comma)
                };
                let whole = &text[..at];
                let parts: Vec<&str> = whole.split(group).collect();
                if !grouped(&parts) {
                    return None;
                }
                (parts.concat(), Some(text[at + 1..].to_owned()))
            }
            (None, Some(_)) => {
                let parts: Vec<&str> = text.split(',').collect();
                if self == Lang::De || !grouped(&parts) {
                    if parts.len() != 2 {
                        return None;
                    }
                    (parts[0].to_owned(), Some(parts[1].to_owned()))
                } else {
                    (parts.concat(), None)
                }
            }
            (Some(_), None) => {
                let parts: Vec<&str> = text.split('.').collect();
                let thousands = parts.len() > 2
                    || (self == Lang::De && parts.len() == 2 && parts[1].len() == 3);
                if thousands {
                    if !grouped(&parts) {
                        return None;
                    }
                    (parts.concat(), None)
                } else {
                    (parts[0].to_owned(), Some(parts[1].to_owned()))
                }
            }
            (None, None) => (text, None),
        };
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        match fraction {
            None => Some(whole),
            Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
                Some(format!("{whole}.{f}"))
            }
            Some(_) => None,
        }
    }

    /// `06.12.2026` (German) or `2026-12-06` (English, unambiguous).
    pub fn date(self, at: DateTime<Utc>) -> String {
        match self {
            Lang::De => at.format("%d.%m.%Y").to_string(),
            Lang::En => at.format("%Y-%m-%d").to_string(),
        }
    }

    /// Date and time of day (UTC).
    pub fn date_time(self, at: DateTime<Utc>) -> String {
        match self {
            Lang::De => at.format("%d.%m.%Y %H:%M UTC").to_string(),
            Lang::En => at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// Whether `parts` after the first are groups of three digits.
fn grouped(parts: &[&str]) -> bool {
    parts.first().is_some_and(|p| (1..=3).contains(&p.len()))
        && parts[1..].iter().all(|p| p.len() == 3)
}

/// Every text of the console in one language; a missing text is a compile
/// error, not a blank on a page.
#[derive(Debug)]
pub struct Messages {
    pub product_name: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub login_user: &'static str,
    pub login_submit: &'static str,
    pub login_dev_note: &'static str,
    pub login_refused: &'static str,
    pub login_unknown: &'static str,
    pub logout: &'static str,
    pub signed_in_as: &'static str,
    pub my_cases: &'static str,
    pub new_case: &'static str,
    pub second_vote_queue: &'static str,
    pub next_page: &'static str,
    pub no_cases: &'static str,
    pub case: &'static str,
    pub borrower: &'static str,
    pub amount: &'static str,
    pub currency: &'static str,
    pub product: &'static str,
    pub term_months: &'static str,
    pub purpose: &'static str,
    pub status: &'static str,
    pub version: &'static str,
    pub updated: &'static str,
    pub opened_by: &'static str,
    pub opened_on: &'static str,
    pub edited_by: &'static str,
    pub file: &'static str,
    pub votes: &'static str,
    pub no_votes: &'static str,
    pub history: &'static str,
    pub vote_stage: &'static str,
    pub voter: &'static str,
    pub decision: &'static str,
    pub rationale: &'static str,
    pub cast_on_version: &'static str,
    pub cast_first_vote: &'static str,
    pub first_vote_intro: &'static str,
    pub approve: &'static str,
    pub decline: &'static str,
    pub submit_vote: &'static str,
    pub vote_recorded: &'static str,
    pub case_opened: &'static str,
    pub create_case: &'static str,
    pub borrower_id: &'static str,
    pub borrower_id_hint: &'static str,
    pub form_has_errors: &'static str,
    pub refused: &'static str,
    pub rule: &'static str,
    pub return_reason: &'static str,
    pub decided: &'static str,
    pub event_opened: &'static str,
    pub event_vote: &'static str,
    pub event_decision: &'static str,
    pub event_returned: &'static str,
    pub not_found: &'static str,
    pub back_to: &'static str,
    pub desk_coming: &'static str,
    pub state_draft: &'static str,
    pub state_awaiting_second_vote: &'static str,
    pub state_escalated: &'static str,
    pub state_approved: &'static str,
    pub state_declined: &'static str,
    pub state_returned: &'static str,
    pub stage_first: &'static str,
    pub stage_second: &'static str,
    pub forbidden_page: &'static str,
    pub csrf_refused: &'static str,
    pub skip_to_content: &'static str,
}

pub static DE: Messages = Messages {
    product_name: "creditops Kreditkonsole",
    login_title: "Anmelden",
    login_intro: "Melden Sie sich mit Ihrer Personalnummer an.",
    login_user: "Personalnummer",
    login_submit: "Anmelden",
    login_dev_note: "Entwicklungsmodus: Anmeldung ohne Passwort.",
    login_refused: "Sie haben heute keine Rolle an diesem Arbeitsplatz. Bitte wenden Sie sich an die Benutzerverwaltung.",
    login_unknown: "Diese Personalnummer ist im Personalverzeichnis nicht aktiv.",
    logout: "Abmelden",
    signed_in_as: "Angemeldet als",
    my_cases: "Kreditfälle",
    new_case: "Neuer Kreditfall",
    second_vote_queue: "Zweitvoten",
    next_page: "Nächste Seite",
    no_cases: "In diesem Status gibt es keine Fälle.",
    case: "Fall",
    borrower: "Kreditnehmer",
    amount: "Betrag",
    currency: "Währung",
    product: "Produkt",
    term_months: "Laufzeit (Monate)",
    purpose: "Verwendungszweck",
    status: "Status",
    version: "Version",
    updated: "Zuletzt geändert",
    opened_by: "Eröffnet von",
    opened_on: "Eröffnet am",
    edited_by: "Bearbeitet von",
    file: "Kreditakte",
    votes: "Voten",
    no_votes: "Noch keine Voten.",
    history: "Verlauf",
    vote_stage: "Votum",
    voter: "Votierende Person",
    decision: "Entscheidung",
    rationale: "Begründung",
    cast_on_version: "Auf Version",
    cast_first_vote: "Erstvotum (Markt) abgeben",
    first_vote_intro: "Ihr Votum gilt für die hier gezeigte Version der Akte.",
    approve: "Zustimmen",
    decline: "Ablehnen",
    submit_vote: "Votum abgeben",
    vote_recorded: "Ihr Votum ist erfasst.",
    case_opened: "Der Fall ist als Entwurf angelegt.",
    create_case: "Fall anlegen",
    borrower_id: "Kreditnehmer-ID",
    borrower_id_hint: "Die ID des registrierten Kreditnehmers (UUID).",
    form_has_errors: "Bitte prüfen Sie die markierten Felder.",
    refused: "Abgelehnt",
    rule: "Regel",
    return_reason: "Grund der Rückgabe",
    decided: "Entschieden",
    event_opened: "Fall eröffnet",
    event_vote: "Votum",
    event_decision: "Entscheidung",
    event_returned: "Zurückgegeben",
    not_found: "Diesen Fall gibt es nicht.",
    back_to: "Zurück zu",
    desk_coming: "Dieser Arbeitsplatz folgt. Die Anmeldung ist bereits hier möglich.",
    state_draft: "Entwurf",
    state_awaiting_second_vote: "Wartet auf Zweitvotum",
    state_escalated: "Eskaliert",
    state_approved: "Genehmigt",
    state_declined: "Abgelehnt",
    state_returned: "Zurückgegeben",
    stage_first: "Erstvotum (Markt)",
    stage_second: "Zweitvotum (Marktfolge)",
    forbidden_page: "Diese Aktion ist für Ihre Rollen nicht freigegeben.",
    csrf_refused: "Das Formular war abgelaufen oder nicht von dieser Seite. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
    skip_to_content: "Zum Inhalt springen",
};

pub static EN: Messages = Messages {
    product_name: "creditops credit console",
    login_title: "Sign in",
    login_intro: "Sign in with your staff id.",
    login_user: "Staff id",
    login_submit: "Sign in",
    login_dev_note: "Development mode: sign-in without a password.",
    login_refused: "You hold no role at this desk today. Please contact user administration.",
    login_unknown: "This staff id is not active in the staff directory.",
    logout: "Sign out",
    signed_in_as: "Signed in as",
    my_cases: "Credit cases",
    new_case: "New credit case",
    second_vote_queue: "Second votes",
    next_page: "Next page",
    no_cases: "There are no cases in this state.",
    case: "Case",
    borrower: "Borrower",
    amount: "Amount",
    currency: "Currency",
    product: "Product",
    term_months: "Term (months)",
    purpose: "Purpose",
    status: "Status",
    version: "Version",
    updated: "Last changed",
    opened_by: "Opened by",
    opened_on: "Opened on",
    edited_by: "Edited by",
    file: "Credit file",
    votes: "Votes",
    no_votes: "No votes yet.",
    history: "History",
    vote_stage: "Vote",
    voter: "Voter",
    decision: "Decision",
    rationale: "Rationale",
    cast_on_version: "On version",
    cast_first_vote: "Cast the first (market) vote",
    first_vote_intro: "Your vote applies to the version of the file shown here.",
    approve: "Approve",
    decline: "Decline",
    submit_vote: "Cast vote",
    vote_recorded: "Your vote is recorded.",
    case_opened: "The case is open as a draft.",
    create_case: "Open case",
    borrower_id: "Borrower id",
    borrower_id_hint: "The id of the registered borrower (UUID).",
    form_has_errors: "Please check the marked fields.",
    refused: "Refused",
    rule: "Rule",
    return_reason: "Reason for return",
    decided: "Decided",
    event_opened: "Case opened",
    event_vote: "Vote",
    event_decision: "Decision",
    event_returned: "Returned",
    not_found: "There is no such case.",
    back_to: "Back to",
    desk_coming: "This desk is coming. Signing in works here already.",
    state_draft: "Draft",
    state_awaiting_second_vote: "Awaiting second vote",
    state_escalated: "Escalated",
    state_approved: "Approved",
    state_declined: "Declined",
    state_returned: "Returned",
    stage_first: "First vote (market)",
    stage_second: "Second vote (back office)",
    forbidden_page: "Your roles do not allow this action.",
    csrf_refused: "The form had expired or did not come from this page. Please reload the page and try again.",
    skip_to_content: "Skip to content",
};

impl Messages {
    pub fn state(&self, status: creditops_domain::CaseStatus) -> &'static str {
        use creditops_domain::CaseStatus;
        match status {
            CaseStatus::Draft => self.state_draft,
            CaseStatus::AwaitingSecondVote => self.state_awaiting_second_vote,
            CaseStatus::Escalated => self.state_escalated,
            CaseStatus::Approved => self.state_approved,
            CaseStatus::Declined => self.state_declined,
            CaseStatus::Returned => self.state_returned,
        }
    }
}

/// What a refusal under `rule` means for the person in front of the screen,
/// and what to do next; `None` where the command's own text says it best.
pub fn rule_explanation(lang: Lang, rule: &str) -> Option<&'static str> {
    Some(match (lang, rule) {
        (Lang::De, "S6") => {
            "Sie haben diesen Fall eröffnet, bearbeitet oder betreuen den Kreditnehmer; das Erstvotum muss eine andere Person aus dem Markt abgeben."
        }
        (Lang::En, "S6") => {
            "You opened or edited this case, or look after the borrower, so another loan officer must cast the first vote."
        }
        (Lang::De, "V3") => {
            "Die Akte hat sich geändert; Ihr Votum bezog sich auf eine ältere Version. Bitte prüfen Sie die aktuelle Version und votieren Sie erneut."
        }
        (Lang::En, "V3") => {
            "The file has changed since you opened it; your vote was for an older version. Please review the current version and vote again."
        }
        (Lang::De, "V4") => {
            "Ihre Kompetenz reicht für diesen Betrag nicht aus; eine Person mit höherer Kompetenzstufe muss votieren."
        }
        (Lang::En, "V4") => {
            "Your competence level does not cover this amount; someone with a higher level must vote."
        }
        (Lang::De, "S8") => "Ihre Rollen erlauben diese Aktion an diesem Arbeitsplatz nicht.",
        (Lang::En, "S8") => "Your roles do not allow this action at this desk.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn german_amounts_group_by_points_and_use_a_decimal_comma() {
        let amount = Decimal::new(125_000_000, 2);
        assert_eq!(Lang::De.money(amount, "EUR"), "1.250.000,00 EUR");
        assert_eq!(Lang::En.money(amount, "EUR"), "1,250,000.00 EUR");
        assert_eq!(Lang::De.money(Decimal::new(5, 1), "EUR"), "0,50 EUR");
        assert_eq!(
            Lang::De.money(Decimal::new(-100_000, 0), "EUR"),
            "-100.000,00 EUR"
        );
    }

    #[test]
    fn german_dates_are_day_month_year() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).single();
        let at = at.unwrap_or_default();
        assert_eq!(Lang::De.date(at), "06.12.2026");
        assert_eq!(Lang::En.date(at), "2026-12-06");
    }

    #[test]
    fn the_first_supported_language_wins() {
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR,de;q=0.8,en;q=0.5")),
            Lang::De
        );
        assert_eq!(Lang::from_accept_language(Some("fr")), Lang::De);
        assert_eq!(Lang::from_accept_language(None), Lang::De);
    }
}
