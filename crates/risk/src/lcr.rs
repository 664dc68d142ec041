//! Liquidity coverage ratio (R6): LCR = HQLA / net cash outflows over 30
//! days, net outflows = outflows - min(inflows, 75 % of outflows).

use crate::LiquidityPosition;
use rust_decimal::Decimal;

/// The regulatory minimum in percent; an internal floor is never lower.
pub const REGULATORY_FLOOR_PERCENT: Decimal = Decimal::ONE_HUNDRED;

/// The liquidity figures the gate and the watcher project from: the last
/// position and what has been committed since (reservations, disbursements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidityView {
    pub hqla: Decimal,
    pub outflows_30d: Decimal,
    pub inflows_30d: Decimal,
    pub floor_percent: Decimal,
    /// Cash committed since the position was recorded.
    pub committed: Decimal,
}

impl LiquidityView {
    pub fn new(position: &LiquidityPosition, committed: Decimal) -> Self {
        Self {
            hqla: position.hqla,
            outflows_30d: position.outflows_30d,
            inflows_30d: position.inflows_30d,
            floor_percent: position.floor_percent,
            committed,
        }
    }

    /// The LCR in percent after paying out `amount` more: the cash leaves the
    /// liquid-asset stock. `None` when there are no net outflows (the ratio
    /// is unbounded, nothing to cover).
    pub fn projected_lcr_percent(&self, amount: Decimal) -> Option<Decimal> {
        lcr_percent(
            self.stock_after(amount),
            self.outflows_30d,
            self.inflows_30d,
        )
    }

    /// Whether the LCR after paying out `amount` stays at or above `floor`
    /// percent. Exact: compares `stock * 100 >= floor * net outflows`
    /// without dividing, so no rounding can let a breach through.
    pub fn meets_floor(&self, amount: Decimal, floor_percent: Decimal) -> bool {
        let net = net_outflows(self.outflows_30d, self.inflows_30d);
        if net <= Decimal::ZERO {
            return true;
        }
        let stock = self.stock_after(amount);
        match (
            stock.checked_mul(Decimal::ONE_HUNDRED),
            floor_percent.checked_mul(net),
        ) {
            (Some(covered), Some(needed)) => covered >= needed,
            // Beyond 28 digits nothing can be compared: refuse.
            _ => false,
        }
    }

    fn stock_after(&self, amount: Decimal) -> Decimal {
        self.hqla - self.committed - amount
    }
}

/// Net cash outflows over 30 days: inflows count up to 75 % of outflows.
pub fn net_outflows(outflows: Decimal, inflows: Decimal) -> Decimal {
    let cap = outflows * Decimal::new(75, 2);
    outflows - inflows.min(cap)
}

/// LCR in percent for display, or `None` without net outflows, rounded
/// down to 4 decimals (decisions use [`LiquidityView::meets_floor`]).
pub fn lcr_percent(hqla: Decimal, outflows: Decimal, inflows: Decimal) -> Option<Decimal> {
    let net = net_outflows(outflows, inflows);
    if net <= Decimal::ZERO {
        return None;
    }
    let ratio = hqla.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(net)?;
    Some(ratio.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::ToNegativeInfinity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn r6_lcr_table() {
        // (hqla, outflows, inflows, expected LCR %)
        let cases = [
            ("110", "100", "0", Some("110")),
            ("100", "100", "0", Some("100")),
            // inflows capped at 75 % of outflows: net = 100 - 75 = 25
            ("50", "100", "90", Some("200")),
            ("50", "100", "75", Some("200")),
            ("50", "100", "74.99", Some("199.9200")),
            ("0", "100", "0", Some("0")),
            ("-10", "100", "0", Some("-10")),
            ("10", "0", "0", None),
            ("1", "3", "0", Some("33.3333")),
        ];
        for (hqla, out, inflow, expected) in cases {
            assert_eq!(
                lcr_percent(d(hqla), d(out), d(inflow)),
                expected.map(d),
                "hqla {hqla} out {out} in {inflow}"
            );
        }
    }

    #[test]
    fn r6_projection_subtracts_committed_and_the_request() {
        let view = LiquidityView {
            hqla: d("1200"),
            outflows_30d: d("1000"),
            inflows_30d: d("0"),
            floor_percent: d("110"),
            committed: d("50"),
        };
        assert_eq!(view.projected_lcr_percent(d("50")), Some(d("110")));
        assert_eq!(view.projected_lcr_percent(d("50.01")), Some(d("109.9990")));
        assert!(view.meets_floor(d("50"), d("110")));
        assert!(!view.meets_floor(d("50.01"), d("110")));
    }
}
