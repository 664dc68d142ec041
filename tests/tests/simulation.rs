//! Deterministic simulation of the credit case lifecycle with injected
//! faults (issue 7.5), in the spirit of TigerBeetle's simulator.
//!
//! A seeded generator issues first votes, second votes, edits and returns
//! by every demo voter (and by people of the wrong side) on a handful of
//! cases (some of borrowers in restructuring or workout, L9), one at a time, through the command functions the market and
//! back-office services run (the command layer's `cast_vote` and
//! `change_case` inside `run_command`), against the real store (SQLite, and
//! PostgreSQL when configured). Faults:
//! - **aborted transactions**: the command runs in a transaction that is
//!   then dropped without commit (with its idempotent answer saved in it);
//!   nothing of it may be visible, audited or replayable afterwards;
//! - **duplicate deliveries**: a command with an `Idempotency-Key` is
//!   delivered again, right away or much later: the same answer and one
//!   effect; a key reused for another request is refused;
//! - **reordering**: commands are held back and delivered after others
//!   (votes on a file that was edited since, returns after decisions), and
//!   versions are stale or from the future.
//!
//! A reference model (a few dozen lines of plain rules, below) says after
//! every step what each command must answer and what state each case must
//! be in: status, file version, revision, round, escalation level, editors,
//! every vote, the decision, and how many audit events the case has. The
//! answer to a successful command must equal a fresh read of the stored
//! case. At the end the audit chain verifies and reconciliation finds no
//! business row without its event.
//!
//! The run prints `simulation seed N`; `CREDITOPS_SIM_SEED=N` replays it
//! exactly (commands, actors, faults and outcomes), and
//! `CREDITOPS_SIM_STEPS` sets the number of steps (the long version). A
//! failure names the seed, the step and the last steps before it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::response::Response;
use creditops_audit::AuditAction;
use creditops_commands::cases::{CaseAction, change_case};
use creditops_commands::votes::{BeforeVote, CastVote, cast_vote, claim_for_vote};
use creditops_domain::{
    CaseFile, CaseId, CaseStatus, CreditCase, DecisionOutcome, DomainError, Money, RuleId, StaffId,
    VoteDecision, VoteStage,
};
use creditops_http::views::case_json;
use creditops_http::{
    ApiError, Begin, CommandOutcome, CommandRequest, IdempotencyKey, Principal, ProblemKind,
    ServiceContext, run_command_begun,
};
use creditops_store::{
    AuditFilter, IdempotencyScope, LiquidityClaim, StaffLookup, StoreExt, StoredResponse, Tx,
};
use creditops_tests::reqwest::Method;
use creditops_tests::{Backend, Rng, TestPlatform, count_from_env, json, seed_from_env};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Steps in the test run (`CREDITOPS_SIM_STEPS` for more): fewer on
/// PostgreSQL, where every check first waits for the sequencer.
const SQLITE_STEPS: usize = 400;
const POSTGRES_STEPS: usize = 200;
/// Cases kept open at a time; a new one is opened when fewer are.
const OPEN_CASES: usize = 4;
/// A borrower takes new cases until this much of its credit is approved.
const BORROWER_BUDGET: i64 = 3_000_000;
/// File amounts (EUR): every competence level, and a level boundary.
const AMOUNTS: [i64; 6] = [100_000, 200_000, 250_000, 400_000, 900_000, 1_500_000];

const MARKET: [(&str, u8); 4] = [("lo-1", 2), ("lo-2", 2), ("lo-3", 3), ("mb-1", 4)];
const BACKOFFICE: [(&str, u8); 4] = [("ba-1", 2), ("ba-2", 2), ("ba-3", 3), ("bb-1", 4)];
/// Opens every case and manages every borrower: never a voter (S6).
const ORIGINATOR: &str = "lo-1";

// -- the reference model ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Market,
    Backoffice,
}

fn person(name: &str) -> (Side, u8) {
    MARKET
        .iter()
        .map(|(n, l)| (*n, Side::Market, *l))
        .chain(BACKOFFICE.iter().map(|(n, l)| (*n, Side::Backoffice, *l)))
        .find(|(n, _, _)| *n == name)
        .map(|(_, side, level)| (side, level))
        .expect("a demo voter")
}

/// The competence order of rule set 1 (V4): up to 250k, 1m, 5m, board.
fn level_for(exposure: i64) -> u8 {
    match exposure {
        ..=250_000 => 1,
        250_001..=1_000_000 => 2,
        1_000_001..=5_000_000 => 3,
        _ => 4,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelVote {
    stage: VoteStage,
    voter: String,
    decision: VoteDecision,
    version: i64,
    round: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelCase {
    id: CaseId,
    borrower: usize,
    amount: i64,
    status: CaseStatus,
    version: i64,
    revision: i64,
    round: u32,
    escalation: Option<u8>,
    editors: BTreeSet<String>,
    votes: Vec<ModelVote>,
    decision: Option<(DecisionOutcome, u8)>,
    /// Audit events that name the case.
    events: usize,
}

impl ModelCase {
    /// Not decided, and some market voter may still cast the first vote:
    /// whoever edited the file may not (S6), so a case every market voter
    /// edited can never be decided.
    fn alive(&self) -> bool {
        !self.status.is_final() && self.editors.len() < MARKET.len() - 1
    }
}

struct ModelBorrower {
    id: String,
    approved: i64,
    /// In restructuring or workout (L9): the back-office vote needs one
    /// competence level more.
    problem_loan: bool,
}

#[derive(Debug, Clone)]
enum Cmd {
    FirstVote {
        case: usize,
        voter: &'static str,
        decision: VoteDecision,
        version: i64,
    },
    SecondVote {
        case: usize,
        voter: &'static str,
        decision: VoteDecision,
        version: i64,
    },
    Edit {
        case: usize,
        editor: &'static str,
        version: i64,
        amount: i64,
    },
    Return {
        case: usize,
        by: &'static str,
    },
}

impl Cmd {
    /// How the service begins this command's transaction: an approving
    /// second vote with the risk gate's shared lock held.
    fn begin(&self) -> Begin {
        match self {
            Cmd::SecondVote {
                decision: VoteDecision::Approve,
                ..
            } => Begin::SharingRisk,
            _ => Begin::Plain,
        }
    }

    fn case(&self) -> usize {
        match self {
            Cmd::FirstVote { case, .. }
            | Cmd::SecondVote { case, .. }
            | Cmd::Edit { case, .. }
            | Cmd::Return { case, .. } => *case,
        }
    }

    fn actor(&self) -> &'static str {
        match self {
            Cmd::FirstVote { voter, .. } | Cmd::SecondVote { voter, .. } => voter,
            Cmd::Edit { editor, .. } => editor,
            Cmd::Return { by, .. } => by,
        }
    }

    /// The route the service runs it under (the idempotency scope).
    fn operation(&self) -> &'static str {
        match self {
            Cmd::FirstVote { .. } => "POST /v1/cases/{id}/first-vote",
            Cmd::SecondVote { .. } => "POST /v1/cases/{id}/second-vote",
            Cmd::Edit { .. } => "PATCH /v1/cases/{id}",
            Cmd::Return { .. } => "POST /v1/cases/{id}/return",
        }
    }

    fn service(&self) -> usize {
        match self {
            Cmd::FirstVote { .. } | Cmd::Edit { .. } => 0,
            Cmd::SecondVote { .. } | Cmd::Return { .. } => 1,
        }
    }

    /// The request as the service would fingerprint it (path id + body).
    fn fingerprint(&self, id: CaseId) -> Vec<u8> {
        let body = match self {
            Cmd::FirstVote {
                decision, version, ..
            }
            | Cmd::SecondVote {
                decision, version, ..
            } => json!({"decision": decision, "rationale": RATIONALE, "version": version}),
            Cmd::Edit {
                version, amount, ..
            } => json!({"version": version, "amount": euros(*amount)}),
            Cmd::Return { .. } => json!({"reason": REASON}),
        };
        serde_json::to_vec(&(id, body)).expect("fingerprint")
    }
}

const RATIONALE: &str = "simulated review";
const REASON: &str = "simulated rework";

fn euros(amount: i64) -> String {
    format!("{amount}.00")
}

/// What the model says a command must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Ok,
    Refused(ProblemKind, Option<RuleId>),
}

struct Model {
    cases: Vec<ModelCase>,
    borrowers: Vec<ModelBorrower>,
}

impl Model {
    /// The answer `cmd` must get now and, if it succeeds, the case after it.
    fn predict(&self, cmd: &Cmd) -> (Expect, Option<ModelCase>) {
        let refused = |kind, rule: Option<RuleId>| (Expect::Refused(kind, rule), None);
        let conflict = refused(ProblemKind::Conflict, None);
        let stale = refused(ProblemKind::StaleVersion, Some(RuleId::V3));
        let rule = |id| refused(ProblemKind::RuleViolation, Some(id));
        let current = &self.cases[cmd.case()];
        let mut case = current.clone();
        let (side, competence) = person(cmd.actor());
        let exposure = self.borrowers[case.borrower].approved + case.amount;
        let required = level_for(exposure).max(case.escalation.unwrap_or(0));
        // V5: after an escalation only people who have not voted on this
        // file version yet may vote.
        let voted_before = |who: &str| {
            case.round > 0
                && case
                    .votes
                    .iter()
                    .any(|v| v.version == case.version && v.round < case.round && v.voter == who)
        };
        match cmd {
            Cmd::FirstVote {
                voter,
                decision,
                version,
                ..
            } => {
                // The market side shows a person off the market side no
                // case at all (hardening finding 9).
                if side != Side::Market {
                    return refused(ProblemKind::NotFound, None);
                }
                if !matches!(
                    case.status,
                    CaseStatus::Draft | CaseStatus::Returned | CaseStatus::Escalated
                ) {
                    return conflict;
                }
                if *version != case.version {
                    return stale;
                }
                if voted_before(voter) {
                    return rule(RuleId::V5);
                }
                if *voter == ORIGINATOR || case.editors.contains(*voter) {
                    return rule(RuleId::S6);
                }
                if competence < required {
                    return rule(RuleId::V4);
                }
                case.votes.push(ModelVote {
                    stage: VoteStage::First,
                    voter: voter.to_string(),
                    decision: *decision,
                    version: case.version,
                    round: case.round,
                });
                match decision {
                    VoteDecision::Approve => case.status = CaseStatus::AwaitingSecondVote,
                    VoteDecision::Decline => {
                        case.status = CaseStatus::Declined;
                        case.decision = Some((DecisionOutcome::Declined, required));
                    }
                }
            }
            Cmd::SecondVote {
                voter,
                decision,
                version,
                ..
            } => {
                if case.status != CaseStatus::AwaitingSecondVote {
                    return conflict;
                }
                if *version != case.version {
                    return stale;
                }
                if side != Side::Backoffice {
                    return rule(RuleId::V2);
                }
                if voted_before(voter) {
                    return rule(RuleId::V5);
                }
                if competence < required {
                    return rule(RuleId::V4);
                }
                if self.borrowers[case.borrower].problem_loan && competence < (required + 1).min(4)
                {
                    return rule(RuleId::L9);
                }
                let first = case
                    .votes
                    .iter()
                    .find(|v| {
                        v.stage == VoteStage::First
                            && v.version == case.version
                            && v.round == case.round
                    })
                    .cloned()
                    .expect("a case awaiting the second vote has a first vote");
                // Another case of the borrower may have been approved since
                // the first vote, raising the level the case needs (V4).
                if person(&first.voter).1 < required {
                    return rule(RuleId::V4);
                }
                case.votes.push(ModelVote {
                    stage: VoteStage::Second,
                    voter: voter.to_string(),
                    decision: *decision,
                    version: case.version,
                    round: case.round,
                });
                match decision {
                    VoteDecision::Approve => {
                        case.status = CaseStatus::Approved;
                        case.decision = Some((DecisionOutcome::Approved, required));
                        case.events += 2; // credit.versioned, risk.reserved
                    }
                    // Divergent votes escalate one level; at the board they
                    // decline (V5).
                    VoteDecision::Decline if required < 4 => {
                        case.status = CaseStatus::Escalated;
                        case.round += 1;
                        case.escalation = Some(required + 1);
                    }
                    VoteDecision::Decline => {
                        case.status = CaseStatus::Declined;
                        case.decision = Some((DecisionOutcome::Declined, required));
                    }
                }
            }
            Cmd::Edit {
                editor,
                version,
                amount,
                ..
            } => {
                if !matches!(case.status, CaseStatus::Draft | CaseStatus::Returned) {
                    return conflict;
                }
                if *version != case.version {
                    return stale;
                }
                if side != Side::Market {
                    return rule(RuleId::S1);
                }
                case.amount = *amount;
                if *editor != ORIGINATOR {
                    case.editors.insert(editor.to_string());
                }
                case.version += 1;
                case.escalation = None;
                case.status = CaseStatus::Draft;
            }
            Cmd::Return { .. } => {
                if !matches!(
                    case.status,
                    CaseStatus::AwaitingSecondVote | CaseStatus::Escalated
                ) {
                    return conflict;
                }
                if side != Side::Backoffice {
                    return rule(RuleId::V6);
                }
                case.status = CaseStatus::Returned;
                case.version += 1;
                case.escalation = None;
            }
        }
        case.revision += 1;
        case.events += 1;
        (Expect::Ok, Some(case))
    }

    fn apply(&mut self, case: ModelCase) {
        let index = self
            .cases
            .iter()
            .position(|c| c.id == case.id)
            .expect("known case");
        if case.status == CaseStatus::Approved && self.cases[index].status != CaseStatus::Approved {
            self.borrowers[case.borrower].approved += case.amount;
        }
        self.cases[index] = case;
    }
}

// -- the platform side ----------------------------------------------------------

/// How a command is delivered this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Plain,
    Keyed,
    /// Run in a transaction that is dropped without commit.
    Aborted {
        keyed: bool,
    },
}

/// A keyed delivery, kept to be delivered again.
struct Keyed {
    cmd: Cmd,
    key: String,
    /// The answer stored for the key: (status, body) once a delivery succeeded.
    answer: Option<(u16, Vec<u8>)>,
}

/// What came back from a delivery.
enum Outcome {
    Answered {
        status: u16,
        body: Vec<u8>,
        replayed: bool,
    },
    Refused(ApiError),
}

impl Outcome {
    fn expect(&self) -> Expect {
        match self {
            Outcome::Answered { .. } => Expect::Ok,
            Outcome::Refused(e) => Expect::Refused(e.kind, e.rule),
        }
    }
}

async fn answered(result: Result<Response, ApiError>) -> Outcome {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
                .to_vec();
            Outcome::Answered {
                status,
                body,
                replayed,
            }
        }
        Err(e) => Outcome::Refused(e),
    }
}

/// What the service handler reads and takes before a vote: the
/// liquidity claim and the rule sets it read for it.
async fn claim_for(
    ctx: &ServiceContext,
    actor: &creditops_commands::Actor,
    id: CaseId,
    cmd: &Cmd,
) -> BeforeVote {
    let (decision, stage) = match cmd {
        Cmd::FirstVote { decision, .. } => (*decision, VoteStage::First),
        Cmd::SecondVote { decision, .. } => (*decision, VoteStage::Second),
        _ => return BeforeVote::default(),
    };
    claim_for_vote(&ctx.commands(), actor, id, decision, stage)
        .await
        .expect("liquidity claim")
}

/// Runs `cmd` as its service's handler does: the claim taken before, the
/// idempotent transaction begun as the service begins it (under `key`, if
/// any), the claim released after.
async fn run_as_service(
    ctx: &Arc<ServiceContext>,
    actor: &Principal,
    id: CaseId,
    cmd: &Cmd,
    key: Option<&str>,
) -> Result<Response, ApiError> {
    let fingerprint = cmd.fingerprint(id);
    let claim = claim_for(ctx, actor, id, cmd).await;
    let (command_ctx, command_actor, command, command_claim) =
        (ctx.clone(), actor.clone(), cmd.clone(), claim.clone());
    let request = CommandRequest {
        principal: actor,
        key: IdempotencyKey(key.map(str::to_owned)),
        operation: cmd.operation(),
        fingerprint: &fingerprint,
    };
    let result = run_command_begun(ctx, request, cmd.begin(), move |tx| {
        Box::pin(async move {
            execute(
                &command_ctx,
                tx,
                &command_actor,
                id,
                &command,
                &command_claim,
            )
            .await
        })
    })
    .await;
    release_liquidity_claim(ctx, claim.claim).await;
    result
}

/// Runs `cmd` in `tx` as the service handler does.
async fn execute(
    ctx: &ServiceContext,
    tx: &mut dyn Tx,
    actor: &Principal,
    id: CaseId,
    cmd: &Cmd,
    before: &BeforeVote,
) -> Result<CommandOutcome, ApiError> {
    let vote = |decision: VoteDecision, version: i64| CastVote {
        decision,
        rationale: RATIONALE.into(),
        version,
        conditions: Vec::new(),
    };
    let ctx = &ctx.commands();
    let case = match cmd {
        Cmd::FirstVote {
            decision, version, ..
        }
        | Cmd::SecondVote {
            decision, version, ..
        } => {
            let stage = if matches!(cmd, Cmd::FirstVote { .. }) {
                VoteStage::First
            } else {
                VoteStage::Second
            };
            cast_vote(
                ctx,
                tx,
                actor,
                id,
                &vote(*decision, *version),
                stage,
                before,
            )
            .await?
        }
        Cmd::Edit {
            version, amount, ..
        } => {
            let action = CaseAction::new(AuditAction::CaseEdited);
            change_case(ctx, tx, actor, id, action, |case, now| {
                let old = &case.file;
                let money =
                    Money::parse(&euros(*amount), "EUR").map_err(|e| DomainError::Invalid(e.0))?;
                let file = CaseFile::new(
                    old.borrower_id,
                    money,
                    &old.product,
                    i64::from(old.term_months),
                    &old.purpose,
                )?;
                case.edit(actor.voter_at(now).as_ref(), file, *version, now)
            })
            .await?
        }
        Cmd::Return { .. } => {
            let action = CaseAction::new(AuditAction::CaseReturned);
            change_case(ctx, tx, actor, id, action, |case, now| {
                case.return_for_rework(actor.voter_at(now).as_ref(), REASON, now)
            })
            .await?
        }
    };
    Ok(CommandOutcome::new(
        axum::http::StatusCode::OK,
        case_json(&case),
    ))
}

/// Withdraws a claim the vote did not settle, as the service handler does.
async fn release_liquidity_claim(ctx: &ServiceContext, claim: Option<LiquidityClaim>) {
    creditops_commands::votes::release_liquidity_claim(&ctx.commands(), claim).await;
}

struct Sim<'p> {
    p: &'p TestPlatform,
    /// The market and the back-office service's context.
    services: [Arc<ServiceContext>; 2],
    rng: Rng,
    seed: u64,
    steps: usize,
    step: usize,
    model: Model,
    held_back: Vec<Cmd>,
    keyed: Vec<Keyed>,
    /// What the last steps did, for a failure report.
    log: VecDeque<String>,
    stats: Stats,
}

#[derive(Default, Debug)]
struct Stats {
    effects: usize,
    refused: usize,
    aborted: usize,
    replayed: usize,
    reordered: usize,
    key_reuse: usize,
    decisions: usize,
    escalations: usize,
    /// Second votes refused because the borrower is a problem loan (L9).
    problem_loan_refusals: usize,
}

impl Sim<'_> {
    #[track_caller]
    fn fail(&self, what: String) -> ! {
        let steps: Vec<&String> = self.log.iter().collect();
        panic!(
            "simulation seed {} failed at step {}: {what}\nlast steps:\n  {}\nreplay: \
             CREDITOPS_SIM_SEED={} CREDITOPS_SIM_STEPS={}",
            self.seed,
            self.step,
            steps
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            self.seed,
            self.steps
        )
    }

    fn note(&mut self, what: String) {
        if self.log.len() == 12 {
            self.log.pop_front();
        }
        self.log.push_back(format!("{}: {what}", self.step));
    }

    async fn principal(&self, name: &str) -> Principal {
        // As the services look their callers up: with the rule sets the
        // store holds, where they are the committed ones.
        let StaffLookup {
            member, rule_sets, ..
        } = self
            .p
            .store
            .staff_member_with_rule_sets(&StaffId::parse(name).expect("id"))
            .await
            .expect("staff")
            .expect("demo staff");
        let at = chrono::Utc::now();
        Principal(creditops_commands::Actor {
            roles: member.roles_at(at),
            member,
            at,
            request_id: format!("sim-{}-{}", self.seed, self.step),
            rule_sets,
            // Read for this call, not kept.
            authority: None,
        })
    }

    /// Opens cases until enough are alive (borrowers with approved credit
    /// beyond the budget are replaced by new ones).
    async fn open_cases(&mut self) {
        while self.model.cases.iter().filter(|c| c.alive()).count() < OPEN_CASES {
            let borrower = match self
                .model
                .borrowers
                .iter()
                .position(|b| b.approved < BORROWER_BUDGET)
            {
                Some(b) if self.rng.chance(70) => b,
                _ => {
                    let id = self
                        .p
                        .borrower_with_limit(
                            ORIGINATOR,
                            json!({"name": "Simulation GmbH", "country": "DE", "sector": "C25"}),
                        )
                        .await;
                    // Some borrowers are problem loans from the start (L9):
                    // back office moves them into restructuring or workout.
                    let problem_loan = self.rng.chance(30);
                    if problem_loan {
                        let stage = if self.rng.chance(50) {
                            "restructuring"
                        } else {
                            "workout"
                        };
                        self.p
                            .call(
                                "ba-1",
                                "backoffice",
                                Method::PUT,
                                &format!("/v1/borrowers/{id}/stage"),
                                Some(json!({"stage": stage, "reason": "simulated problem loan", "plan": [{"title": "simulated milestone", "due_on": (chrono::Utc::now() + chrono::Duration::days(365)).date_naive()}]})),
                            )
                            .await
                            .ok(200);
                    }
                    self.model.borrowers.push(ModelBorrower {
                        id,
                        approved: 0,
                        problem_loan,
                    });
                    self.model.borrowers.len() - 1
                }
            };
            let amount = self.rng.pick(&AMOUNTS);
            let reply = self
                .p
                .call(
                    ORIGINATOR,
                    "market",
                    Method::POST,
                    "/v1/cases",
                    Some(json!({"borrower_id": self.model.borrowers[borrower].id, "amount": euros(amount), "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "simulation"})),
                )
                .await;
            let id: CaseId = reply.ok(201)["id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("case id");
            self.model.cases.push(ModelCase {
                id,
                borrower,
                amount,
                status: CaseStatus::Draft,
                version: 1,
                revision: 1,
                round: 0,
                escalation: None,
                editors: BTreeSet::new(),
                votes: Vec::new(),
                decision: None,
                events: 1,
            });
            self.note(format!(
                "opened case {} ({})",
                self.model.cases.len() - 1,
                euros(amount)
            ));
        }
    }

    /// A random command: mostly on open cases, sometimes on decided ones;
    /// mostly by the right side, with current, stale or future versions.
    fn generate(&mut self) -> Cmd {
        let open: Vec<usize> = (0..self.model.cases.len())
            .filter(|i| self.model.cases[*i].alive())
            .collect();
        let case = if self.rng.chance(85) {
            self.rng.pick(&open)
        } else {
            self.rng.below(self.model.cases.len())
        };
        let current = self.model.cases[case].version;
        let version = match self.rng.below(10) {
            0 => current - 1,
            1 => current + 1,
            _ => current,
        };
        let decision = if self.rng.chance(70) {
            VoteDecision::Approve
        } else {
            VoteDecision::Decline
        };
        let market = self.rng.pick(&MARKET).0;
        let backoffice = self.rng.pick(&BACKOFFICE).0;
        let wrong_side = self.rng.chance(8);
        // Half the time a command that fits the case's state (so the
        // lifecycle gets deep: escalations, returns, re-votes), otherwise
        // any command, in or out of order.
        let kind = if self.rng.chance(50) {
            let fitting: &[usize] = match self.model.cases[case].status {
                CaseStatus::Draft | CaseStatus::Returned => &[0, 6],
                CaseStatus::AwaitingSecondVote => &[3, 3, 9],
                CaseStatus::Escalated => &[0, 0, 9],
                _ => &[0, 3, 6, 9],
            };
            self.rng.pick(fitting)
        } else {
            self.rng.below(10)
        };
        match kind {
            0..=2 => Cmd::FirstVote {
                case,
                voter: if wrong_side { backoffice } else { market },
                decision,
                version,
            },
            3..=5 => Cmd::SecondVote {
                case,
                voter: if wrong_side { market } else { backoffice },
                decision,
                version,
            },
            6..=7 => Cmd::Edit {
                case,
                editor: if wrong_side {
                    backoffice
                } else if self.rng.chance(85) {
                    ORIGINATOR
                } else {
                    market
                },
                version,
                amount: self.rng.pick(&AMOUNTS),
            },
            _ => Cmd::Return {
                case,
                by: if wrong_side { market } else { backoffice },
            },
        }
    }

    /// Delivers `cmd` (with `key` if keyed) and checks the answer against
    /// the model, then the stored state. `answer` is the stored answer for
    /// the key, if a delivery with it succeeded before.
    async fn deliver(
        &mut self,
        cmd: &Cmd,
        delivery: Delivery,
        key: Option<&str>,
        answer: Option<&(u16, Vec<u8>)>,
    ) -> Option<(u16, Vec<u8>)> {
        let id = self.model.cases[cmd.case()].id;
        let ctx = self.services[cmd.service()].clone();
        let actor = self.principal(cmd.actor()).await;
        let (expect, next) = self.model.predict(cmd);
        let scope = key.map(|key| IdempotencyScope {
            actor: actor.id().clone(),
            operation: cmd.operation().to_owned(),
            key: key.to_owned(),
        });
        let before = self.stored(id).await;
        let outcome = match delivery {
            Delivery::Aborted { .. } => {
                let mut tx = match cmd.begin() {
                    Begin::Plain => self.p.store.begin().await,
                    Begin::SharingRisk => self.p.store.begin_sharing_risk().await,
                }
                .expect("begin");
                if let Some(scope) = &scope {
                    let stored = tx.idempotent_response(scope).await.expect("lookup");
                    if stored.is_some() {
                        self.fail(format!("a fresh key {scope:?} has a stored answer"));
                    }
                }
                let claim = claim_for(&ctx, &actor, id, cmd).await;
                let result = execute(&ctx, tx.as_mut(), &actor, id, cmd, &claim).await;
                if let (Ok(outcome), Some(scope)) = (&result, &scope) {
                    let stored = StoredResponse {
                        request_hash: "aborted".into(),
                        status: outcome.status.as_u16(),
                        body: serde_json::to_vec(&outcome.body).expect("body"),
                        created_at: chrono::Utc::now(),
                    };
                    tx.save_idempotent_response(scope, &stored)
                        .await
                        .expect("save answer");
                }
                // The fault: the transaction ends without commit.
                drop(tx);
                release_liquidity_claim(&ctx, claim.claim).await;
                match result {
                    Ok(outcome) => Outcome::Answered {
                        status: outcome.status.as_u16(),
                        body: Vec::new(),
                        replayed: false,
                    },
                    Err(e) => Outcome::Refused(e),
                }
            }
            Delivery::Plain | Delivery::Keyed => {
                answered(run_as_service(&ctx, &actor, id, cmd, key).await).await
            }
        };

        // A replay: the stored answer, no effect.
        if let Some((status, body)) = answer {
            match &outcome {
                Outcome::Answered {
                    status: s,
                    body: b,
                    replayed: true,
                } if s == status && b == body => {}
                Outcome::Answered { replayed, .. } => self.fail(format!(
                    "a duplicate delivery of {cmd:?} was not answered with the stored answer \
                     (replayed: {replayed})"
                )),
                Outcome::Refused(e) => self.fail(format!(
                    "a duplicate delivery of {cmd:?} was refused: {e:?}"
                )),
            }
            self.stats.replayed += 1;
            self.note(format!("{cmd:?} replayed"));
            self.check_case(cmd.case(), &before).await;
            return None;
        }

        let got = outcome.expect();
        self.note(format!("{cmd:?} {delivery:?} -> {got:?}"));
        if got != expect {
            self.fail(format!(
                "{cmd:?} ({delivery:?}) answered {got:?}, the model expects {expect:?}; case \
                 before: {:?}",
                self.model.cases[cmd.case()]
            ));
        }
        if let Delivery::Aborted { .. } = delivery {
            // Nothing of an aborted command is visible, audited or replayable.
            self.stats.aborted += 1;
            self.check_case(cmd.case(), &before).await;
            if let Some(scope) = &scope {
                let mut tx = self.p.store.begin_read().await.expect("read");
                if tx
                    .idempotent_response(scope)
                    .await
                    .expect("lookup")
                    .is_some()
                {
                    self.fail("an aborted command's answer was kept".into());
                }
            }
            return None;
        }
        match (outcome, next) {
            (
                Outcome::Answered {
                    status,
                    body,
                    replayed,
                },
                Some(next),
            ) => {
                if replayed {
                    self.fail(format!(
                        "a first delivery of {cmd:?} was answered as a replay"
                    ));
                }
                if next.decision.is_some() && self.model.cases[cmd.case()].decision.is_none() {
                    self.stats.decisions += 1;
                }
                if next.round > self.model.cases[cmd.case()].round {
                    self.stats.escalations += 1;
                }
                self.model.apply(next);
                self.stats.effects += 1;
                let stored = self.check_case(cmd.case(), &before).await;
                // The answer is the record as every later read shows it.
                let answer: serde_json::Value = serde_json::from_slice(&body).expect("json answer");
                if answer != case_json(&stored) {
                    self.fail(format!(
                        "the answer differs from the stored case:\n{answer}\n{}",
                        case_json(&stored)
                    ));
                }
                Some((status, body))
            }
            (outcome, _) => {
                self.stats.refused += 1;
                if let Outcome::Refused(e) = &outcome
                    && e.rule == Some(RuleId::L9)
                {
                    self.stats.problem_loan_refusals += 1;
                }
                self.check_case(cmd.case(), &before).await;
                None
            }
        }
    }

    async fn stored(&self, id: CaseId) -> CreditCase {
        let mut tx = self.p.store.begin_read().await.expect("read");
        tx.case(id).await.expect("load").expect("case exists")
    }

    /// The stored case and its audit events against the model; returns the
    /// stored case. `before` is the case before the step (an unchanged case
    /// must be identical to it).
    async fn check_case(&self, index: usize, before: &CreditCase) -> CreditCase {
        let model = &self.model.cases[index];
        let stored = self.stored(model.id).await;
        let votes: Vec<ModelVote> = stored
            .votes
            .iter()
            .map(|v| ModelVote {
                stage: v.stage,
                voter: v.voter.staff_id.to_string(),
                decision: v.decision,
                version: v.file_version,
                round: v.round,
            })
            .collect();
        let editors: BTreeSet<String> = stored.editors.iter().map(|e| e.to_string()).collect();
        let decision = stored.decision.as_ref().map(|d| (d.outcome, d.level));
        let seen = (
            stored.status,
            stored.version,
            stored.revision,
            stored.round,
            stored.escalation_level,
            &editors,
            &votes,
            decision,
            stored.file.amount.amount(),
        );
        let expected = (
            model.status,
            model.version,
            model.revision,
            model.round,
            model.escalation,
            &model.editors,
            &model.votes,
            model.decision,
            rust_decimal::Decimal::from(model.amount),
        );
        if seen != expected {
            self.fail(format!(
                "case {index} is\n  {seen:?}\nthe model says\n  {expected:?}"
            ));
        }
        if model.revision == before.revision && stored != *before {
            self.fail(format!("case {index} changed without a new revision"));
        }
        // Invariants that hold whatever the model says: one vote per
        // (version, round, stage), a decision exactly on a decided case,
        // bound to the current file version, and an approval's reservation.
        let mut slots = BTreeSet::new();
        for v in &votes {
            if !slots.insert((v.version, v.round, v.stage.as_str())) {
                self.fail(format!("case {index} has two votes for {v:?}"));
            }
        }
        if stored.decision.is_some() != stored.status.is_final()
            || stored
                .decision
                .as_ref()
                .is_some_and(|d| d.file_version != stored.version)
        {
            self.fail(format!("case {index}: decision and status disagree"));
        }
        let mut tx = self.p.store.begin_read().await.expect("read");
        let reservation = tx.reservation(model.id).await.expect("reservation");
        if (stored.status == CaseStatus::Approved)
            != reservation
                .as_ref()
                .is_some_and(|r| r.amount == stored.file.amount.amount())
        {
            self.fail(format!("case {index}: reservation {reservation:?}"));
        }
        drop(tx);
        let events = self.case_events(model.id).await;
        if events != model.events {
            self.fail(format!(
                "case {index} has {events} audit events, the model says {}",
                model.events
            ));
        }
        stored
    }

    async fn case_events(&self, id: CaseId) -> usize {
        // PostgreSQL links committed events in the sequencer: link first.
        self.p
            .store
            .flush_audit(std::time::Duration::from_secs(30))
            .await
            .expect("flush");
        let mut tx = self.p.store.begin_read().await.expect("read");
        tx.audit_events(&AuditFilter {
            case_id: Some(id),
            limit: 100_000,
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .len()
    }

    async fn step(&mut self) {
        self.open_cases().await;
        // A duplicate delivery of an earlier keyed command.
        if !self.keyed.is_empty() && self.rng.chance(12) {
            let index = self.rng.below(self.keyed.len());
            let (cmd, key, answer) = {
                let k = &self.keyed[index];
                (k.cmd.clone(), k.key.clone(), k.answer.clone())
            };
            // A key reused for another request is refused, not replayed.
            if answer.is_some() && self.rng.chance(25) {
                self.reuse_key(&cmd, &key).await;
                return;
            }
            let answer = self
                .deliver(&cmd, Delivery::Keyed, Some(&key), answer.as_ref())
                .await;
            if answer.is_some() {
                self.keyed[index].answer = answer;
            }
            return;
        }
        // A command held back earlier, delivered out of order.
        let cmd = if !self.held_back.is_empty() && self.rng.chance(10) {
            self.stats.reordered += 1;
            let index = self.rng.below(self.held_back.len());
            self.held_back.swap_remove(index)
        } else {
            let cmd = self.generate();
            if self.rng.chance(8) {
                self.note(format!("{cmd:?} held back"));
                self.held_back.push(cmd);
                return;
            }
            cmd
        };
        let delivery = match self.rng.below(100) {
            0..=14 => Delivery::Aborted {
                keyed: self.rng.chance(50),
            },
            15..=39 => Delivery::Keyed,
            _ => Delivery::Plain,
        };
        let key = match delivery {
            Delivery::Keyed | Delivery::Aborted { keyed: true } => {
                Some(format!("sim-{}-{}", self.seed, self.step))
            }
            _ => None,
        };
        let answer = self.deliver(&cmd, delivery, key.as_deref(), None).await;
        if let Some(key) = key {
            self.keyed.push(Keyed {
                cmd: cmd.clone(),
                key,
                answer,
            });
        }
        // After an aborted delivery the client usually retries.
        if matches!(delivery, Delivery::Aborted { .. }) && self.rng.chance(60) {
            self.deliver(&cmd, Delivery::Plain, None, None).await;
        }
    }

    /// The same key and operation with another request: 422, no effect.
    async fn reuse_key(&mut self, cmd: &Cmd, key: &str) {
        let mut other = cmd.clone();
        match &mut other {
            Cmd::FirstVote { version, .. }
            | Cmd::SecondVote { version, .. }
            | Cmd::Edit { version, .. } => *version += 7,
            Cmd::Return { case, .. } => {
                *case = (*case + 1) % self.model.cases.len();
            }
        }
        let id = self.model.cases[other.case()].id;
        let before = self.stored(id).await;
        let ctx = self.services[other.service()].clone();
        let actor = self.principal(other.actor()).await;
        let result = run_as_service(&ctx, &actor, id, &other, Some(key)).await;
        self.note(format!("key {key} reused for {other:?}"));
        match result {
            Err(e) if e.kind == ProblemKind::IdempotencyMismatch => {}
            Err(e) => self.fail(format!("a reused key was answered {e:?}")),
            Ok(r) => self.fail(format!("a reused key was answered {}", r.status())),
        }
        self.stats.key_reuse += 1;
        self.check_case(other.case(), &before).await;
    }

    /// The whole trail verifies and every business row has its event.
    async fn check_trail(&self) {
        self.p
            .store
            .flush_audit(std::time::Duration::from_secs(30))
            .await
            .expect("flush");
        let mut tx = self.p.store.begin_read().await.expect("read");
        let report =
            creditops_svc_audit::verify_chain(tx.as_mut(), creditops::DEFAULT_AUDIT_ORIGIN)
                .await
                .expect("verify");
        if report["ok"] != true {
            self.fail(format!("the audit chain does not verify: {report}"));
        }
        let missing = tx.unaudited_rows(10).await.expect("reconcile");
        if !missing.is_empty() {
            self.fail(format!(
                "business rows without their audit event: {missing:?}"
            ));
        }
        for (index, case) in self.model.cases.iter().enumerate() {
            let stored = self.stored(case.id).await;
            let mut probe = stored.clone();
            probe.revision = case.revision;
            let _ = self.check_case(index, &probe).await;
        }
    }
}

async fn simulate(p: &TestPlatform, default_steps: usize) {
    let seed = seed_from_env("CREDITOPS_SIM_SEED");
    let steps = count_from_env("CREDITOPS_SIM_STEPS", default_steps);
    println!(
        "simulation seed {seed} ({steps} steps, {} store)",
        p.store.backend()
    );
    let started = std::time::Instant::now();
    // Liquidity for any number of approvals: the model leaves the LCR out.
    let proposed = p
        .call(
            "rc-1",
            "risk",
            Method::PUT,
            "/v1/liquidity",
            Some(json!({"hqla": "1000000000000", "outflows_30d": "1250000000", "inflows_30d": "250000000"})),
        )
        .await;
    p.approve_pending(&proposed, "rc-2", "risk").await.ok(200);
    let policies = creditops::platform::load_policies(None)
        .await
        .expect("policies");
    let idp = &p.idp;
    // Never signalled: the simulation has no shutdown.
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let context = |service: &'static str| {
        Arc::new(ServiceContext {
            service,
            store: p.store.clone(),
            verifier: Arc::new(creditops_http::keys::TokenKeys::Pinned(
                creditops_auth::TokenVerifier::from_jwks(
                    &idp.jwks_json(),
                    creditops_auth::DevIdentityProvider::ISSUER,
                    &creditops_auth::service_audience(service),
                )
                .expect("verifier"),
            )),
            authorizer: policies.authorizers[service].clone(),
            policy_hash: policies.hash.clone(),
            sod: policies.sod.clone(),
            metrics: Arc::new(creditops_http::metrics::Metrics::new(service)),
            limits: creditops_http::RequestLimits::default(),
            streams: Arc::new(creditops_http::streams::StreamSlots::default()),
            unauthenticated: Arc::new(creditops_http::abuse::Unauthenticated::new(
                creditops_http::abuse::DEFAULT_AUTH_FAILURES_PER_MINUTE,
            )),
            stopping: stopping.clone(),
        })
    };
    let mut sim = Sim {
        p,
        services: [context("market"), context("backoffice")],
        rng: Rng::new(seed),
        seed,
        steps,
        step: 0,
        model: Model {
            cases: Vec::new(),
            borrowers: Vec::new(),
        },
        held_back: Vec::new(),
        keyed: Vec::new(),
        log: VecDeque::new(),
        stats: Stats::default(),
    };
    for step in 1..=steps {
        sim.step = step;
        sim.step().await;
    }
    sim.check_trail().await;
    println!(
        "simulation seed {seed}: {steps} steps on {} cases in {:.1} s: {:?}",
        sim.model.cases.len(),
        started.elapsed().as_secs_f64(),
        sim.stats
    );
    assert!(
        sim.stats.decisions > 0 && sim.stats.aborted > 0 && sim.stats.replayed > 0,
        "the simulation reached decisions, aborts and replays: {:?}",
        sim.stats
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_simulation() {
    let p = TestPlatform::start(Backend::Sqlite).await.expect("sqlite");
    simulate(&p, SQLITE_STEPS).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_simulation() {
    let Some(p) = TestPlatform::start(Backend::Postgres).await else {
        return;
    };
    simulate(&p, POSTGRES_STEPS).await;
    p.stop().await;
}
