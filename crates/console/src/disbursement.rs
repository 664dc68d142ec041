//! The market desk's disbursement of an approved case (R5, R6): the case
//! page shows the reservation it would consume and the liquidity check with
//! it; the button runs the API's disbursement command.

use crate::Console;
use crate::casework::{Refusal, audit_command_refusal, form_access};
use crate::i18n::Lang;
use crate::pages::{message, unavailable};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditops_commands::market::{self, DisbursementPreview};
use creditops_domain::CaseId;
use creditops_http::{CommandOutcome, IdempotencyKey, Principal, run_command};
use creditops_risk::ReservationStatus;
use rust_decimal::Decimal;
use serde::Deserialize;

/// This part's texts in one language.
pub(crate) struct Texts {
    pub heading: &'static str,
    pub reservation: &'static str,
    pub reserved_on: &'static str,
    pub expires: &'static str,
    pub disbursed_on: &'static str,
    pub disbursed_by: &'static str,
    pub lcr: &'static str,
    pub floor: &'static str,
    pub lcr_after: &'static str,
    pub ready: &'static str,
    pub not_ready: &'static str,
    pub submit: &'static str,
    pub done: &'static str,
    pub no_reservation: &'static str,
    pub status_active: &'static str,
    pub status_consumed: &'static str,
    pub status_expired: &'static str,
}

static DE: Texts = Texts {
    heading: "Auszahlung",
    reservation: "Reservierung",
    reserved_on: "Reserviert am",
    expires: "Gültig bis",
    disbursed_on: "Ausgezahlt am",
    disbursed_by: "Ausgezahlt von",
    lcr: "Liquiditätsdeckungsquote (LCR)",
    floor: "Untergrenze",
    lcr_after: "LCR nach Auszahlung",
    ready: "Die Reservierung ist aktiv und die LCR hält die Untergrenze: die Auszahlung ist möglich.",
    not_ready: "Eine Auszahlung ist jetzt nicht möglich",
    submit: "Auszahlen",
    done: "Der Kredit ist ausgezahlt; die Reservierung ist verbraucht.",
    no_reservation: "Für diesen Fall ist keine Reservierung vorhanden.",
    status_active: "aktiv",
    status_consumed: "verbraucht",
    status_expired: "abgelaufen",
};

static EN: Texts = Texts {
    heading: "Disbursement",
    reservation: "Reservation",
    reserved_on: "Reserved on",
    expires: "Valid until",
    disbursed_on: "Disbursed on",
    disbursed_by: "Disbursed by",
    lcr: "Liquidity coverage ratio (LCR)",
    floor: "Floor",
    lcr_after: "LCR after disbursement",
    ready: "The reservation is active and the LCR keeps the floor: the case can be disbursed.",
    not_ready: "The case cannot be disbursed now",
    submit: "Disburse",
    done: "The credit is disbursed; the reservation is consumed.",
    no_reservation: "This case holds no reservation.",
    status_active: "active",
    status_consumed: "consumed",
    status_expired: "expired",
};

pub(crate) fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// The disbursement card of an approved case.
pub(crate) struct Card {
    pub t: &'static Texts,
    pub amount: Option<String>,
    pub status: &'static str,
    pub reserved_on: String,
    pub expires: String,
    pub disbursed: Option<(String, String)>,
    /// Projected LCR and floor in percent, and the gauge's fill (0-100,
    /// the LCR against twice the floor) and floor mark.
    pub lcr: Option<(String, String, i64, i64)>,
    /// Why it cannot be disbursed now, with its rule.
    pub blocked: Option<(String, Option<String>)>,
    pub can_disburse: bool,
}

fn percent(lang: Lang, value: Decimal) -> String {
    format!("{} %", lang.money(value, "").trim_end())
}

/// The card for `preview`; `may` is whether the person may disburse at all.
/// Open conditions precedent of `case` block it first (L5).
pub(crate) fn card(
    lang: Lang,
    preview: &DisbursementPreview,
    may: bool,
    case: &creditops_domain::CreditCase,
) -> Card {
    let conditions = case.check_conditions_met().err();
    let t = texts(lang);
    let reservation = preview.reservation.as_ref();
    let status = match reservation.map(|r| r.status) {
        Some(ReservationStatus::Active) => t.status_active,
        Some(ReservationStatus::Consumed) => t.status_consumed,
        Some(ReservationStatus::Expired) => t.status_expired,
        None => t.no_reservation,
    };
    let lcr = preview.check.as_ref().ok().and_then(|finding| {
        let (usage, floor) = (finding.usage?, finding.limit?);
        let scale = floor * Decimal::from(2);
        let fraction = |value: Decimal| {
            if scale <= Decimal::ZERO {
                return 100;
            }
            i64::try_from((value * Decimal::from(100) / scale).round())
                .unwrap_or(100)
                .clamp(0, 100)
        };
        Some((
            percent(lang, usage),
            percent(lang, floor),
            fraction(usage),
            fraction(floor),
        ))
    });
    Card {
        t,
        amount: reservation.map(|r| lang.money(r.amount, creditops_risk::REPORTING_CURRENCY)),
        status,
        reserved_on: reservation
            .map(|r| lang.date_time(r.reserved_at))
            .unwrap_or_default(),
        expires: reservation
            .map(|r| lang.date_time(r.expires_at))
            .unwrap_or_default(),
        disbursed: reservation.and_then(|r| {
            Some((
                lang.date_time(r.closed_at?),
                r.closed_by.as_ref()?.to_string(),
            ))
            .filter(|_| r.status == ReservationStatus::Consumed)
        }),
        lcr,
        blocked: match &conditions {
            Some(open) => Some((open.to_string(), open.rule_id().map(|r| r.to_string()))),
            None => preview
                .check
                .as_ref()
                .err()
                .map(|refusal| (refusal.to_string(), refusal.rule().map(|r| r.to_string()))),
        },
        can_disburse: may && preview.check.is_ok() && conditions.is_none(),
    }
}

#[derive(Deserialize)]
pub(crate) struct DisburseForm {
    csrf: Option<String>,
}

pub(crate) async fn disburse(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DisburseForm>,
) -> Response {
    const ROUTE: &str = "/console/cases/{id}/disburse";
    let (live, lang) = match form_access(
        &console,
        &headers,
        form.csrf.as_deref(),
        ("/v1/cases/{id}/disburse", "POST"),
        ROUTE,
        id.parse().ok(),
    )
    .await
    {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<CaseId>() else {
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
    let (commands, actor) = (console.ctx.commands(), live.actor.clone());
    let answer = run_command(
        &console.ctx,
        &principal,
        IdempotencyKey(None),
        "POST /v1/cases/{id}/disburse",
        id.to_string().as_bytes(),
        move |tx| {
            Box::pin(async move {
                let done = market::disburse(&commands, tx, &actor, id).await?;
                Ok(CommandOutcome::new(
                    StatusCode::OK,
                    serde_json::json!({ "case_id": done.case_id }),
                ))
            })
        },
    )
    .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/console/cases/{id}?done=disbursed")).into_response(),
        Err(e) => {
            if let Err(audit) = audit_command_refusal(&console, &live, ROUTE, &e, Some(id)).await {
                return unavailable(&console, lang, &audit.detail);
            }
            crate::market::case_with_refusal(
                &console,
                lang,
                &live,
                id,
                Refusal::of(lang, &e),
                e.status(),
            )
            .await
        }
    }
}
