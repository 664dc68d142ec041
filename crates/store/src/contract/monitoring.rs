//! The contract of monitoring (L6-L10): the early-warning inputs as one
//! set-based read, the watch list, reviews, stages with their plans,
//! provisions and alerts, each written once where it must be.

use super::prelude::*;
use crate::{BorrowerFlag, FlagKind, MonitoringAlert, Review, ReviewKind, StageTransfer};
use crate::{StoredMilestone, WatchEntry};
use chrono::NaiveDate;
use creditops_domain::collateral::{
    Collateral, CollateralKind, CollateralStatus, Valuation, ValuationStatus,
};
use creditops_domain::four_eyes::Verdict;
use creditops_domain::monitoring::{Milestone, MilestoneStatus, Stage, decide_provision};
use creditops_domain::{
    CollateralId, Provision, ProvisionId, ProvisionStatus, Rating, RatingStatus, ReviewId,
    ValuationId,
};

fn arrears(
    source: &str,
    borrower: BorrowerId,
    due: Option<u32>,
    over: Option<u32>,
) -> ImportedBalance {
    ImportedBalance {
        days_past_due: due,
        overdrawn_days: over,
        ..balance(source, borrower, "1000.00")
    }
}

fn rating_of(borrower: BorrowerId, class: u8, seconds: i64) -> Rating {
    Rating {
        borrower_id: borrower,
        class,
        pd: "0.0100".parse().expect("decimal"),
        method: "scorecard".into(),
        reason: "annual accounts".into(),
        status: RatingStatus::Set,
        rated_by: staff_id(ANALYST),
        rated_at: micros(at(seconds)),
        rules_version: 1,
    }
}

fn valued(item: &Collateral, value: &str, on: &str, seconds: i64) -> Valuation {
    Valuation {
        id: ValuationId::generate(),
        collateral_id: item.id,
        value: Money::parse(value, "EUR").expect("money"),
        valuation_date: on.parse::<NaiveDate>().expect("date"),
        valuer: "Gutachter".into(),
        method: "market_value".into(),
        recorded_by: staff_id(ANALYST),
        recorded_at: micros(at(seconds)),
        side: Side::Backoffice,
        status: ValuationStatus::Effective,
        confirmed_by: None,
        confirmed_at: None,
    }
}

fn flag(borrower: BorrowerId, kind: FlagKind) -> BorrowerFlag {
    BorrowerFlag {
        id: uuid::Uuid::now_v7(),
        borrower_id: borrower,
        kind,
        reason: "press: 'insolvency'; DROP TABLE borrower_flags; --".into(),
        raised_by: staff_id(LOAN_OFFICER),
        raised_at: micros(at(10)),
        cleared_by: None,
        cleared_at: None,
    }
}

fn entry(borrower: BorrowerId, indicator: &str) -> WatchEntry {
    WatchEntry {
        borrower_id: borrower,
        indicator: indicator.into(),
        value: "91".into(),
        rules_version: 1,
        hit_at: micros(at(20)),
        review_id: None,
    }
}

pub async fn l7_early_warning_inputs_and_the_watch_list(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let late = insert_borrower(store).await;
    let downgraded = insert_borrower(store).await;
    let devalued = insert_borrower(store).await;
    let flagged = insert_borrower(store).await;
    let quiet = insert_borrower(store).await;
    let house = Collateral {
        id: CollateralId::generate(),
        borrower_id: devalued,
        kind: CollateralKind::MortgageCommercial,
        nominal: Money::parse("2000000.00", "EUR").expect("money"),
        description: "Halle".into(),
        status: CollateralStatus::Active,
        registered_by: staff_id(LOAN_OFFICER),
        registered_at: micros(at(1)),
    };
    let mut tx = store.begin().await.expect("begin");
    for b in [
        arrears("a-1", late, Some(30), Some(5)),
        arrears("a-2", late, Some(95), None),
        arrears("a-3", quiet, None, None),
    ] {
        tx.import_balance(&b).await.expect("import");
    }
    for r in [
        rating_of(downgraded, 4, 1),
        rating_of(downgraded, 5, 2),
        rating_of(downgraded, 8, 3),
        rating_of(quiet, 3, 1),
    ] {
        tx.insert_rating(&r).await.expect("rating");
    }
    tx.insert_collateral(&house).await.expect("collateral");
    tx.insert_valuation(&valued(&house, "1000000.00", "2025-01-10", 2))
        .await
        .expect("valuation");
    tx.insert_valuation(&valued(&house, "750000.00", "2026-01-10", 3))
        .await
        .expect("valuation");
    let mut cleared = flag(flagged, FlagKind::CovenantBreach);
    tx.insert_flag(&flag(flagged, FlagKind::NegativeInformation))
        .await
        .expect("flag");
    tx.insert_flag(&cleared).await.expect("flag");
    cleared.cleared_by = Some(staff_id(ANALYST));
    cleared.cleared_at = Some(micros(at(11)));
    tx.clear_flag(&cleared).await.expect("clear");
    assert!(matches!(
        tx.clear_flag(&cleared).await,
        Err(StoreError::Conflict(_))
    ));
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("read");
    let all = tx.early_warning_signals(None).await.expect("signals");
    let of = |id: BorrowerId| all.iter().find(|(b, _)| *b == id).map(|(_, s)| s.clone());
    let late_signals = of(late).expect("late");
    assert_eq!(
        late_signals.days_past_due,
        Some(95),
        "the largest of its balances"
    );
    assert_eq!(late_signals.overdrawn_days, Some(5));
    assert_eq!(of(downgraded).expect("rated").rating_change, Some((5, 8)));
    assert_eq!(
        of(devalued).expect("valued").collateral_drop_percent,
        Some(Decimal::from(25))
    );
    let flags = of(flagged).expect("flagged");
    assert!(
        flags.negative_information && !flags.covenant_breach,
        "cleared flags do not count"
    );
    // A balance without arrears and a single rating are no input.
    assert!(of(quiet).is_none(), "{all:?}");
    let scoped = tx
        .early_warning_signals(Some(&[downgraded]))
        .await
        .expect("scoped");
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].0, downgraded);
    // Scoped to every borrower above, each input reads as without a scope.
    let everyone = [late, downgraded, devalued, flagged, quiet];
    let scoped = tx
        .early_warning_signals(Some(&everyone))
        .await
        .expect("scoped");
    let mut expected: Vec<_> = all
        .iter()
        .filter(|(b, _)| everyone.contains(b))
        .cloned()
        .collect();
    expected.sort_by_key(|(b, _)| *b);
    let mut scoped_sorted = scoped.clone();
    scoped_sorted.sort_by_key(|(b, _)| *b);
    assert_eq!(scoped_sorted, expected);
    assert_eq!(scoped.len(), 4, "{scoped:?}");
    assert!(
        tx.early_warning_signals(Some(&[]))
            .await
            .expect("none")
            .is_empty()
    );
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    tx.insert_watch_entry(&entry(late, "days_past_due"))
        .await
        .expect("entry");
    tx.insert_watch_entry(&entry(flagged, "negative_information"))
        .await
        .expect("entry");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.insert_watch_entry(&entry(late, "days_past_due"))
            .await
            .expect("listed already"),
        "listed once"
    );
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    tx.clear_watch_entry(late, "days_past_due", micros(at(30)))
        .await
        .expect("clear");
    let listed = tx.watch_entries(None).await.expect("list");
    assert_eq!(listed, vec![entry(flagged, "negative_information")]);
    // Listed again once it hits again: the cleared entry stays as history.
    tx.insert_watch_entry(&entry(late, "days_past_due"))
        .await
        .expect("again");
    assert_eq!(
        tx.watch_entries(Some(&[late])).await.expect("scoped").len(),
        1
    );
    // Entries of other times, rule sets and values, one with its review.
    let review = review(downgraded, ReviewKind::AdHoc, 5);
    tx.insert_review(&review).await.expect("review");
    for (borrower, indicator, hour, review_id) in [
        (downgraded, "rating_downgrade", 25, Some(review.id)),
        (devalued, "collateral_drop", 22, None),
        (downgraded, "negative_information", 25, None),
    ] {
        let entry = WatchEntry {
            value: format!("{hour}.5"),
            rules_version: hour,
            hit_at: micros(at(hour)),
            review_id,
            ..entry(borrower, indicator)
        };
        tx.insert_watch_entry(&entry).await.expect("entry");
    }
    // Read together, the inputs and the list are what each read gives
    // alone, in its order, for every scope.
    let everyone = [late, downgraded, devalued, flagged, quiet];
    for scope in [
        None,
        Some(&everyone[..]),
        Some(&[downgraded][..]),
        Some(&[quiet][..]),
        Some(&[][..]),
    ] {
        let signals = tx.early_warning_signals(scope).await.expect("signals");
        let listed = tx.watch_entries(scope).await.expect("list");
        let together = tx.early_warning_inputs(scope).await.expect("together");
        assert_eq!(together, (signals, listed), "{scope:?}");
    }
    let (_, listed) = tx.early_warning_inputs(None).await.expect("together");
    assert_eq!(listed.len(), 5, "{listed:?}");
    let reviewed: Vec<_> = listed.iter().filter_map(|e| e.review_id).collect();
    assert_eq!(reviewed, vec![review.id], "{listed:?}");
    tx.commit().await.expect("commit");
}

fn review(borrower: BorrowerId, kind: ReviewKind, due: i64) -> Review {
    Review {
        id: ReviewId::generate(),
        borrower_id: borrower,
        kind,
        reason: "scheduled".into(),
        due_at: micros(day(due)),
        opened_at: micros(at(1)),
        assignee: None,
        overdue_at: None,
        completed_by: None,
        completed_at: None,
        assessment: None,
    }
}

pub async fn l6_l10_reviews_stages_plans_and_provisions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let b = insert_borrower(store).await;
    let other = insert_borrower(store).await;

    // Reviews: one open of each kind per borrower; completed once.
    let regular = review(b, ReviewKind::Regular, 30);
    let ad_hoc = review(b, ReviewKind::AdHoc, 2);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_review(&regular).await.expect("regular");
    tx.insert_review(&ad_hoc).await.expect("ad hoc");
    tx.insert_review(&review(other, ReviewKind::Regular, 10))
        .await
        .expect("other");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(
        !tx.insert_review(&review(b, ReviewKind::Regular, 40))
            .await
            .expect("open already"),
        "one open review of a kind"
    );
    assert!(
        tx.mark_review_overdue(regular.id, micros(at(40)))
            .await
            .expect("mark")
    );
    assert!(
        !tx.mark_review_overdue(regular.id, micros(at(41)))
            .await
            .expect("again"),
        "marked once"
    );
    assert_eq!(
        tx.review(regular.id)
            .await
            .expect("read")
            .expect("stored")
            .overdue_at,
        Some(micros(at(40)))
    );
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let open = tx.open_reviews(None, 10).await.expect("open");
    let dues: Vec<ReviewId> = open.iter().map(|r| r.id).collect();
    assert_eq!(dues[0], ad_hoc.id, "by due date");
    assert_eq!(dues.len(), 3);
    let done = Review {
        completed_by: Some(staff_id(ANALYST)),
        completed_at: Some(micros(at(50))),
        assessment: Some(serde_json::json!({"summary": "stable", "covenants": "met"})),
        assignee: Some(staff_id(ANALYST)),
        ..ad_hoc.clone()
    };
    tx.update_review(&done).await.expect("complete");
    assert_eq!(
        tx.review(ad_hoc.id).await.expect("read"),
        Some(done.clone())
    );
    assert_eq!(
        tx.last_completed_reviews().await.expect("last"),
        vec![(b, micros(at(50)))]
    );
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(matches!(
        tx.update_review(&done).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);

    // Stages: the newest transfer is the stage; the plan is its own.
    let into = |from: Stage, to: Stage, seconds: i64| StageTransfer {
        id: uuid::Uuid::now_v7(),
        borrower_id: b,
        from_stage: from,
        to_stage: to,
        reason: "arrears".into(),
        decided_by: staff_id(ANALYST),
        decided_at: micros(at(seconds)),
        rules_version: 1,
    };
    let first = into(Stage::Normal, Stage::Restructuring, 60);
    let second = into(Stage::Restructuring, Stage::Workout, 70);
    let milestone = |transfer: &StageTransfer, ordinal: i64, title: &str| StoredMilestone {
        id: uuid::Uuid::now_v7(),
        borrower_id: b,
        transfer_id: transfer.id,
        ordinal,
        milestone: Milestone {
            title: title.into(),
            due_on: "2027-06-30".parse().expect("date"),
            status: MilestoneStatus::Open,
        },
        updated_by: staff_id(ANALYST),
        updated_at: micros(transfer.decided_at),
    };
    let old_step = milestone(&first, 1, "new equity");
    let sale = milestone(&second, 1, "sale of the plant");
    let mut tx = store.begin().await.expect("begin");
    tx.insert_stage_transfer(&first).await.expect("first");
    tx.insert_milestone(&old_step).await.expect("milestone");
    tx.insert_stage_transfer(&second).await.expect("second");
    tx.insert_milestone(&sale).await.expect("milestone");
    assert_eq!(
        tx.current_stage(b).await.expect("stage"),
        Some(second.clone())
    );
    assert_eq!(tx.current_stage(other).await.expect("none"), None);
    assert_eq!(
        tx.stage_transfers_since(b, micros(at(65)))
            .await
            .expect("since"),
        vec![second.clone()]
    );
    assert_eq!(tx.stages().await.expect("stages"), vec![second.clone()]);
    assert_eq!(
        tx.milestones(Some(b)).await.expect("plan"),
        vec![sale.clone()]
    );
    tx.update_milestone(
        sale.id,
        MilestoneStatus::Met,
        &staff_id(ANALYST),
        micros(at(80)),
    )
    .await
    .expect("met");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(matches!(
        tx.update_milestone(
            sale.id,
            MilestoneStatus::Missed,
            &staff_id(ANALYST),
            micros(at(81))
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let back = StageTransfer {
        from_stage: Stage::Workout,
        to_stage: Stage::Normal,
        ..into(Stage::Workout, Stage::Normal, 90)
    };
    tx.insert_stage_transfer(&back).await.expect("back");
    assert!(
        tx.stages().await.expect("stages").is_empty(),
        "normal is not listed"
    );
    assert!(tx.milestones(Some(b)).await.expect("plan").is_empty());
    tx.commit().await.expect("commit");

    // Provisions: decided once, by another person; approved ones summed.
    let proposal = |amount: &str| Provision {
        id: ProvisionId::generate(),
        borrower_id: b,
        credit_id: None,
        amount: Money::parse(amount, "EUR").expect("money"),
        reason: "insolvency".into(),
        method: "collateral shortfall".into(),
        status: ProvisionStatus::Proposed,
        proposed_by: staff_id(ANALYST),
        proposed_at: micros(at(100)),
        decided_by: None,
        decided_at: None,
        board_alert: false,
    };
    let large = proposal("600000.10");
    let small = proposal("0.90");
    let rejected = proposal("5.00");
    let mut tx = store.begin().await.expect("begin");
    for p in [&large, &small, &rejected] {
        tx.insert_provision(p).await.expect("provision");
    }
    tx.commit().await.expect("commit");
    let second_person = staff_id(LOAN_OFFICER);
    let decided = |p: &Provision, verdict| {
        decide_provision(
            p,
            Some(Side::Backoffice),
            &second_person,
            verdict,
            micros(at(110)),
        )
        .expect("decidable")
    };
    let mut tx = store.begin().await.expect("begin");
    tx.decide_provision(&decided(&large, Verdict::Approve))
        .await
        .expect("approve");
    tx.decide_provision(&decided(&small, Verdict::Approve))
        .await
        .expect("approve");
    tx.decide_provision(&decided(&rejected, Verdict::Reject))
        .await
        .expect("reject");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(matches!(
        tx.decide_provision(&decided(&large, Verdict::Reject)).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    let sums = tx.approved_provisions().await.expect("sums");
    assert_eq!(sums.len(), 1);
    assert_eq!(sums[0].0, b);
    assert_eq!(sums[0].1.amount(), dec("600001.00"));
    let stored = tx.provision(large.id).await.expect("read").expect("stored");
    assert_eq!(stored.status, ProvisionStatus::Approved);
    assert_eq!(stored.decided_by, Some(second_person.clone()));
    assert_eq!(tx.provisions(Some(b), 10).await.expect("list").len(), 3);
    assert!(
        tx.provisions(Some(other), 10)
            .await
            .expect("list")
            .is_empty()
    );

    // Alerts, newest first.
    let alert = |kind: &str, seconds: i64| MonitoringAlert {
        id: uuid::Uuid::now_v7(),
        kind: kind.into(),
        borrower_id: b,
        subject_id: large.id.as_uuid(),
        audience: if kind == "provision_board" {
            "board".into()
        } else {
            "back_office".into()
        },
        detail: "detail".into(),
        raised_at: micros(at(seconds)),
    };
    let older = alert("review_overdue", 120);
    let newer = alert("provision_board", 130);
    tx.insert_monitoring_alert(&older).await.expect("alert");
    tx.insert_monitoring_alert(&newer).await.expect("alert");
    assert_eq!(
        tx.monitoring_alerts(10).await.expect("alerts"),
        vec![newer, older]
    );
    tx.commit().await.expect("commit");
}
