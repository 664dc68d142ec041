//! The credit analysts' desk on the back-office service: the second-vote
//! queue, a case with the first vote, the file version and the risk gate's
//! verdict side by side, the second vote and the return to market.

use crate::Console;
use crate::i18n::Lang;
use crate::pages::NavLink;
use axum::Router;

pub(crate) fn routes(console: &Console) -> Router<Console> {
    if console.settings.desk.service != "backoffice" {
        return Router::new();
    }
    Router::new()
}

/// The back-office desk's navigation.
pub(crate) fn nav(lang: Lang) -> Vec<NavLink> {
    let m = lang.messages();
    vec![NavLink {
        href: "/console/queue",
        label: m.second_vote_queue,
    }]
}
