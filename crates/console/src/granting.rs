//! The desks' part of the credit after its first decision: the borrower's
//! rating on a case page (back office sets it, market proposes one; L4),
//! the decision kind and the credit a case changes (L1), and the
//! conditions precedent of an approval with back office's sign-off (L5).

use crate::Console;
use crate::casework::{form_access, permitted, refusal_page};
use crate::i18n::Lang;
use crate::pages::message;
use crate::session::LiveSession;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditops_commands::{cases, granting};
use creditops_domain::{
    BorrowerId, CaseId, CaseKind, CaseStatus, CreditCase, RatingInput, RatingRules, RatingStatus,
    Timestamp,
};
use creditops_http::views::case_json;
use creditops_http::{ApiError, CommandOutcome, IdempotencyKey, Principal, run_command};
use serde::Deserialize;

pub(crate) struct Texts {
    pub rating: &'static str,
    pub class: &'static str,
    pub pd: &'static str,
    pub rated: &'static str,
    pub no_rating: &'static str,
    pub stale: &'static str,
    pub proposals: &'static str,
    pub reason: &'static str,
    pub set_rating: &'static str,
    pub propose_rating: &'static str,
    pub rating_intro_backoffice: &'static str,
    pub rating_intro_market: &'static str,
    pub conditions: &'static str,
    pub due: &'static str,
    pub open: &'static str,
    pub signed_off: &'static str,
    pub evidence: &'static str,
    pub sign_off: &'static str,
    pub conditions_intro: &'static str,
    pub kind: &'static str,
    pub credit: &'static str,
    pub rating_done: &'static str,
    pub signed_off_done: &'static str,
    pub change_intro: &'static str,
    pub change_credit: &'static str,
    pub collateral_id: &'static str,
}

const DE: Texts = Texts {
    rating: "Rating (Risikoklassifizierung)",
    class: "Klasse",
    pd: "Ausfallwahrscheinlichkeit",
    rated: "Festgesetzt",
    no_rating: "Kein Rating der Marktfolge: ein Erstvotum ist erst nach dem Rating möglich (L4).",
    stale: "Das Rating ist älter als die erlaubte Frist: die Marktfolge erneuert es vor dem Erstvotum (L4).",
    proposals: "Vorschläge des Markts",
    reason: "Begründung",
    set_rating: "Rating festsetzen",
    propose_rating: "Rating vorschlagen",
    rating_intro_backoffice: "Die Marktfolge setzt das Rating fest (BTO 1.4); es gilt ab sofort für alle Fälle des Kreditnehmers.",
    rating_intro_market: "Der Markt kann ein Rating vorschlagen; festgesetzt wird es von der Marktfolge.",
    conditions: "Auszahlungsvoraussetzungen",
    due: "fällig bis",
    open: "offen",
    signed_off: "erfüllt, bestätigt von",
    evidence: "Nachweis",
    sign_off: "Als erfüllt bestätigen",
    conditions_intro: "Ausgezahlt wird erst, wenn die Marktfolge jede Voraussetzung bestätigt hat (L5).",
    kind: "Art der Entscheidung",
    credit: "Kredit",
    rating_done: "Das Rating ist erfasst.",
    signed_off_done: "Die Voraussetzung ist als erfüllt bestätigt.",
    change_intro: "Betrag und Laufzeit sind die des Kredits nach der Änderung; beide Voten werden auf der Kompetenzstufe nach der Änderung abgegeben (L1).",
    change_credit: "Diesen Kredit ändern",
    collateral_id: "ID der freizugebenden Sicherheit",
};

const EN: Texts = Texts {
    rating: "Rating (risk classification)",
    class: "Class",
    pd: "Probability of default",
    rated: "Set",
    no_rating: "No rating by back office: the first vote waits for it (L4).",
    stale: "The rating is older than allowed: back office renews it before the first vote (L4).",
    proposals: "Proposals by market",
    reason: "Reason",
    set_rating: "Set the rating",
    propose_rating: "Propose a rating",
    rating_intro_backoffice: "Back office sets the rating (BTO 1.4); it applies to every case of the borrower from now on.",
    rating_intro_market: "Market may propose a rating; back office sets it.",
    conditions: "Conditions precedent",
    due: "due by",
    open: "open",
    signed_off: "met, signed off by",
    evidence: "Evidence",
    sign_off: "Sign off as met",
    conditions_intro: "Money is paid out only once back office has signed off every condition (L5).",
    kind: "Kind of decision",
    credit: "Credit",
    rating_done: "The rating is recorded.",
    signed_off_done: "The condition is signed off as met.",
    change_intro: "amount and term are the credit's after the change; both votes are cast at the competence level after it (L1).",
    change_credit: "Change this credit",
    collateral_id: "Id of the collateral to release",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// A probability of default as a percentage in the person's spelling
/// (`0,20 %` or `0.20 %`).
fn percent(lang: Lang, pd: rust_decimal::Decimal) -> String {
    let text = (pd * rust_decimal::Decimal::ONE_HUNDRED)
        .normalize()
        .to_string();
    match lang {
        Lang::De => format!("{} %", text.replace('.', ",")),
        Lang::En => format!("{text} %"),
    }
}

/// How a desk names a decision kind.
pub(crate) fn kind_label(lang: Lang, kind: CaseKind) -> &'static str {
    match (lang, kind) {
        (Lang::De, CaseKind::New) => "Neukredit",
        (Lang::De, CaseKind::Increase) => "Erhöhung",
        (Lang::De, CaseKind::Prolongation) => "Prolongation",
        (Lang::De, CaseKind::ChangeOfTerms) => "Änderung der Konditionen",
        (Lang::De, CaseKind::CollateralRelease) => "Sicherheitenfreigabe",
        (Lang::De, CaseKind::Overdraft) => "Überziehung",
        (Lang::En, CaseKind::New) => "New credit",
        (Lang::En, CaseKind::Increase) => "Increase",
        (Lang::En, CaseKind::Prolongation) => "Prolongation",
        (Lang::En, CaseKind::ChangeOfTerms) => "Change of terms",
        (Lang::En, CaseKind::CollateralRelease) => "Collateral release",
        (Lang::En, CaseKind::Overdraft) => "Overdraft",
    }
}

pub(crate) struct ConditionLine {
    pub id: u32,
    pub text: String,
    pub due: Option<String>,
    pub signed: Option<String>,
}

pub(crate) struct RatingLine {
    pub class: u8,
    pub pd: String,
    pub by: String,
    pub on: String,
    pub reason: String,
}

/// The granting panels of a case page.
pub(crate) struct Panels {
    pub t: &'static Texts,
    pub case_id: String,
    pub borrower_id: String,
    pub kind: &'static str,
    /// The credit a change case changes: its id and version then.
    pub credit: Option<String>,
    pub rating: Option<RatingLine>,
    pub rating_fresh: bool,
    pub proposals: Vec<RatingLine>,
    pub can_set_rating: bool,
    pub can_propose_rating: bool,
    pub conditions: Vec<ConditionLine>,
    pub can_sign_off: bool,
    /// Links that open a change case on the credit an approval made (L1).
    pub changes: Vec<(String, &'static str)>,
}

/// The panels of `case` for the session's person: what the rating is and
/// who may set or propose one, and the conditions with sign-off forms.
pub(crate) async fn panels(
    console: &Console,
    lang: Lang,
    live: &LiveSession,
    case: &CreditCase,
    now: Timestamp,
) -> Panels {
    let t = texts(lang);
    let ratings = granting::ratings(&console.ctx.commands(), case.file.borrower_id)
        .await
        .unwrap_or_default();
    let line = |r: &creditops_domain::Rating| RatingLine {
        class: r.class,
        pd: percent(lang, r.pd),
        by: r.rated_by.to_string(),
        on: lang.date(r.rated_at),
        reason: r.reason.clone(),
    };
    let set = ratings.iter().find(|r| r.status == RatingStatus::Set);
    // The age the rules in force allow (the defaults if they cannot be read).
    let max_age = granting::rating_rules(&console.ctx.commands())
        .await
        .unwrap_or_else(|_| RatingRules::default());
    let rating_fresh = set.is_some_and(|r| r.rated_at >= max_age.oldest_accepted(now));
    let newest_set = set.map(|r| r.rated_at);
    let proposals = ratings
        .iter()
        .filter(|r| r.status == RatingStatus::Proposed)
        .filter(|r| newest_set.is_none_or(|at| r.rated_at > at))
        .map(line)
        .collect();
    let open = !case.status.is_final();
    Panels {
        t,
        case_id: case.id.to_string(),
        borrower_id: case.file.borrower_id.to_string(),
        kind: kind_label(lang, case.file.kind),
        credit: case.file.base.as_ref().map(|base| {
            format!(
                "{} · {} {} · {}",
                base.credit_id
                    .to_string()
                    .chars()
                    .take(8)
                    .collect::<String>(),
                lang.messages().version,
                base.version,
                lang.money(base.amount, &base.currency)
            )
        }),
        rating: set.map(line),
        rating_fresh,
        proposals,
        can_set_rating: open && permitted(console, live, "/v1/borrowers/{id}/rating", "PUT"),
        can_propose_rating: open
            && permitted(console, live, "/v1/borrowers/{id}/rating-proposals", "POST"),
        conditions: case
            .conditions
            .iter()
            .map(|c| ConditionLine {
                id: c.id,
                text: c.text.clone(),
                due: c.due.map(|d| match lang {
                    Lang::De => d.format("%d.%m.%Y").to_string(),
                    Lang::En => d.format("%Y-%m-%d").to_string(),
                }),
                signed: c
                    .sign_off
                    .as_ref()
                    .map(|s| format!("{} ({}): {}", s.by, lang.date(s.at), s.evidence)),
            })
            .collect(),
        changes: match &case.decision {
            Some(decision)
                if case.status == CaseStatus::Approved
                    && permitted(console, live, "/v1/cases", "POST") =>
            {
                decision
                    .credit_after
                    .map(|after| {
                        CaseKind::ALL
                            .into_iter()
                            .filter(|kind| kind.changes_a_credit())
                            .map(|kind| {
                                (
                                    format!(
                                        "/console/cases/new?kind={kind}&credit_id={}",
                                        after.credit_id
                                    ),
                                    kind_label(lang, kind),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        },
        can_sign_off: case.status == CaseStatus::Approved
            && permitted(
                console,
                live,
                "/v1/cases/{id}/conditions/{condition_id}/sign-off",
                "POST",
            ),
    }
}

#[derive(Deserialize)]
pub(crate) struct RatingForm {
    csrf: Option<String>,
    /// The case page to go back to.
    #[serde(default)]
    case: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    pd: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub(crate) struct SignOffForm {
    csrf: Option<String>,
    #[serde(default)]
    evidence: String,
}

/// Back office sets (or market proposes) the borrower's rating from a case
/// page (L4).
pub(crate) async fn rate(
    console: Console,
    headers: HeaderMap,
    borrower: String,
    form: RatingForm,
    status: RatingStatus,
) -> Response {
    let (api_route, method, route) = match status {
        RatingStatus::Set => (
            "/v1/borrowers/{id}/rating",
            "PUT",
            "/console/borrowers/{id}/rating",
        ),
        RatingStatus::Proposed => (
            "/v1/borrowers/{id}/rating-proposals",
            "POST",
            "/console/borrowers/{id}/rating-proposals",
        ),
    };
    let case = form.case.parse::<CaseId>().ok();
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        (api_route, method),
        route,
        case,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let (Ok(borrower), Some(case)) = (borrower.parse::<BorrowerId>(), case) else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    let pd = lang
        .plain_number(&form.pd)
        .and_then(|pd| pd.parse::<rust_decimal::Decimal>().ok());
    let input = match (form.class.trim().parse::<u8>(), pd) {
        (Ok(class), Some(pd)) => RatingInput {
            class,
            pd,
            method: "internal".into(),
            reason: form.reason.clone(),
        },
        _ => {
            let e = ApiError::validation(match lang {
                Lang::De => {
                    "Klasse als Zahl und Ausfallwahrscheinlichkeit als Dezimalbruch angeben (z. B. 0,0020)"
                }
                Lang::En => {
                    "give the class as a number and the probability of default as a fraction (e.g. 0.0020)"
                }
            });
            return refusal_page(&console, lang, &live, route, &e, Some(case)).await;
        }
    };
    let principal = Principal(live.actor.clone());
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let fingerprint =
        serde_json::to_vec(&(borrower, &form.class, &form.pd, &form.reason)).unwrap_or_default();
    let operation = format!("{method} {api_route}");
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        &operation,
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let rating =
                    granting::rate_borrower(&commands, tx, &actor, borrower, &input, status)
                        .await?;
                CommandOutcome::view(StatusCode::CREATED, &rating)
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{case}?done=rated")).into_response(),
        Err(e) => refusal_page(&console, lang, &live, route, &e, Some(case)).await,
    }
}

pub(crate) async fn set_rating(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(borrower): Path<String>,
    axum::Form(form): axum::Form<RatingForm>,
) -> Response {
    rate(console, headers, borrower, form, RatingStatus::Set).await
}

pub(crate) async fn propose_rating(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(borrower): Path<String>,
    axum::Form(form): axum::Form<RatingForm>,
) -> Response {
    rate(console, headers, borrower, form, RatingStatus::Proposed).await
}

/// Back office signs off one condition precedent (L5).
pub(crate) async fn sign_off(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((id, condition)): Path<(String, String)>,
    axum::Form(form): axum::Form<SignOffForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/conditions/{condition_id}/sign-off";
    let case = id.parse::<CaseId>().ok();
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/cases/{id}/conditions/{condition_id}/sign-off", "POST"),
        ROUTE,
        case,
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let (Some(case), Ok(condition)) = (case, condition.parse::<u32>()) else {
        return message(
            &console,
            lang,
            Some(&live),
            StatusCode::NOT_FOUND,
            lang.messages().not_found,
            None,
        );
    };
    let principal = Principal(live.actor.clone());
    let (commands, actor, evidence) = (
        console.ctx.commands(),
        live.actor.clone(),
        form.evidence.clone(),
    );
    let fingerprint = serde_json::to_vec(&(case, condition, &form.evidence)).unwrap_or_default();
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/cases/{id}/conditions/{condition_id}/sign-off",
        &fingerprint,
        move |tx| {
            Box::pin(async move {
                let case = cases::sign_off_condition(
                    &commands, tx, &actor, case, condition, &evidence, None,
                )
                .await?;
                Ok(CommandOutcome::new(StatusCode::OK, case_json(&case)))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{case}?done=signed_off")).into_response(),
        Err(e) => refusal_page(&console, lang, &live, ROUTE, &e, Some(case)).await,
    }
}
