//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds
//! the directory, which cargo does not track by itself.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
