//! The contract of the paged lists: case lists by filter and by a market
//! person's scope (hardening finding 9, which must select exactly what the
//! domain's rule admits case by case), and the borrower, group and
//! related-party lists internal audit reads (A7).

use super::prelude::*;
use crate::CaseFilter;
use creditops_domain::{MarketScope, RuleParameters};

const RETAIL_UNIT: &str = "market-retail";
const RETAIL_OFFICER: &str = "lr-1";

async fn seed_retail(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    tx.upsert_unit(&unit_id(RETAIL_UNIT), "Retail Banking", Side::Market)
        .await
        .expect("retail unit");
    tx.insert_staff(&member(
        RETAIL_OFFICER,
        RETAIL_UNIT,
        Side::Market,
        Role::LoanOfficer,
    ))
    .await
    .expect("retail officer");
    tx.commit().await.expect("commit");
}

async fn listed(store: &dyn Store, filter: &CaseFilter) -> Vec<CaseId> {
    let mut tx = store.begin_read().await.expect("begin_read");
    tx.cases_page(filter)
        .await
        .expect("cases page")
        .iter()
        .map(|c| c.id)
        .collect()
}

pub async fn case_lists_select_what_the_market_scope_admits(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    seed_retail(store).await;
    let borrower_id = insert_borrower(store).await;
    // A corporate case, a retail case and a retail case escalated to 2.
    let corporate = new_case(borrower_id, "1000.00", "EUR");
    let mut retail = new_case(borrower_id, "2000.00", "EUR");
    retail.originator = staff_id(RETAIL_OFFICER);
    let mut escalated = retail.clone();
    escalated.id = CaseId::generate();
    escalated.escalation_level = Some(2);
    let cases = [corporate, retail, escalated];
    for case in &cases {
        insert_case(store, case).await;
    }
    let order = RuleParameters::defaults().competence_order;
    let corporate_voter = |level| Voter {
        staff_id: staff_id(LOAN_OFFICER),
        unit_id: unit_id(MARKET_UNIT),
        side: Side::Market,
        competence_level: level,
        left_market_at: None,
    };
    let scopes = [
        MarketScope::of(Some(&corporate_voter(1)), &order),
        MarketScope::of(Some(&corporate_voter(2)), &order),
        MarketScope::of(Some(&corporate_voter(4)), &order),
        MarketScope::Nothing,
    ];
    let expected_counts = [1, 2, 3, 0];
    for (scope, expected) in scopes.iter().zip(expected_counts) {
        let filter = CaseFilter {
            market_scope: Some(scope.clone()),
            limit: 100,
            ..CaseFilter::default()
        };
        let got = listed(store, &filter).await;
        assert_eq!(got.len(), expected, "{scope:?}");
        // The list holds exactly what the domain admits case by case.
        let mut tx = store.begin_read().await.expect("begin_read");
        for case in &cases {
            let originator = tx
                .staff_member(&case.originator)
                .await
                .expect("originator")
                .expect("known");
            let owning = originator.market_units_at(case.created_at);
            let admitted = scope.access(case, &owning).may_read();
            assert_eq!(got.contains(&case.id), admitted, "{scope:?} {:?}", case.id);
        }
    }

    // Filters combine with AND; pages follow the id.
    let all = CaseFilter {
        limit: 100,
        ..CaseFilter::default()
    };
    assert_eq!(listed(store, &all).await.len(), 3);
    let opened = |from, before| CaseFilter {
        opened_from: from,
        opened_before: before,
        ..all.clone()
    };
    assert_eq!(listed(store, &opened(Some(at(10)), None)).await.len(), 3);
    assert!(listed(store, &opened(Some(at(11)), None)).await.is_empty());
    assert!(listed(store, &opened(None, Some(at(10)))).await.is_empty());
    let other = CaseFilter {
        borrower_id: Some(BorrowerId::generate()),
        ..all.clone()
    };
    assert!(listed(store, &other).await.is_empty());
    let approved = CaseFilter {
        status: Some(CaseStatus::Approved),
        ..all.clone()
    };
    assert!(listed(store, &approved).await.is_empty());
    let first = listed(
        store,
        &CaseFilter {
            limit: 2,
            ..all.clone()
        },
    )
    .await;
    let rest = listed(
        store,
        &CaseFilter {
            after: first.last().copied(),
            ..all.clone()
        },
    )
    .await;
    let mut ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
    ids.sort();
    assert_eq!([first, rest].concat(), ids);
}

pub async fn audit_lists_page_borrowers_groups_and_related_parties(store: Arc<dyn Store>) {
    let store = store.as_ref();
    seed_org(store).await;
    let mut borrowers = Vec::new();
    for _ in 0..3 {
        borrowers.push(insert_borrower(store).await);
    }
    borrowers.sort();
    let group = unit_id("gcc-1");
    let mut tx = store.begin().await.expect("begin");
    for id in ["gcc-1", "gcc-2"] {
        tx.insert_group(&BorrowerGroup {
            id: unit_id(id),
            name: "Group".into(),
            created_by: staff_id(ANALYST),
            created_at: at(0),
        })
        .await
        .expect("group");
    }
    tx.set_group_membership(borrowers[0], Some(&group), at(5))
        .await
        .expect("join");
    tx.set_group_membership(borrowers[0], None, at(9))
        .await
        .expect("leave");
    tx.set_group_membership(borrowers[1], Some(&group), at(7))
        .await
        .expect("join");
    for (borrower, staff) in [(0, EDITOR), (0, LOAN_OFFICER), (1, EDITOR)] {
        tx.insert_related_party(&RelatedParty {
            borrower_id: borrowers[borrower],
            staff_id: staff_id(staff),
            relation: "spouse".into(),
            recorded_by: staff_id(ANALYST),
            recorded_at: at(1),
        })
        .await
        .expect("related party");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin_read().await.expect("begin_read");
    let page = tx.borrowers_page(None, 2).await.expect("borrowers");
    let rest = tx
        .borrowers_page(page.last().map(|b| b.id), 2)
        .await
        .expect("borrowers");
    let ids: Vec<BorrowerId> = page.iter().chain(&rest).map(|b| b.id).collect();
    assert_eq!(ids, borrowers);
    assert_eq!(page[0].name, "Beispiel Maschinenbau GmbH");

    let groups = tx.groups_page(None, 1).await.expect("groups");
    assert_eq!(groups[0].id, group);
    let after = tx.groups_page(Some(&group), 10).await.expect("groups");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, unit_id("gcc-2"));
    let history = tx.group_history(&group).await.expect("history");
    let rows: Vec<_> = history
        .iter()
        .map(|m| (m.borrower_id, m.valid_from, m.valid_to))
        .collect();
    assert_eq!(
        rows,
        vec![
            (borrowers[0], at(5), Some(at(9))),
            (borrowers[1], at(7), None)
        ]
    );

    let page = tx
        .related_parties_page(None, None, 2)
        .await
        .expect("related parties");
    let last = page.last().map(|p| (p.borrower_id, p.staff_id.clone()));
    let rest = tx
        .related_parties_page(None, last, 2)
        .await
        .expect("related parties");
    let pairs: Vec<_> = page
        .iter()
        .chain(&rest)
        .map(|p| {
            (
                p.borrower_id,
                p.staff_id.as_str().to_owned(),
                p.relation.clone(),
            )
        })
        .collect();
    // By borrower, then staff id; the relation as recorded.
    let spouse = "spouse".to_owned();
    assert_eq!(
        pairs,
        vec![
            (borrowers[0], LOAN_OFFICER.to_owned(), spouse.clone()),
            (borrowers[0], EDITOR.to_owned(), spouse.clone()),
            (borrowers[1], EDITOR.to_owned(), spouse),
        ]
    );
    let one = tx
        .related_parties_page(Some(borrowers[1]), None, 10)
        .await
        .expect("related parties");
    assert_eq!(one.len(), 1);
}
