-- A collateral-release decision names the collateral it releases (L1, L3);
-- its approval releases it. (SQLite adds no table constraint by ALTER: the
-- domain keeps kind and collateral together; PostgreSQL checks them.)
ALTER TABLE cases ADD COLUMN released_collateral_id TEXT REFERENCES collateral (id);
