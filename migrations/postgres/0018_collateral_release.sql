-- A collateral-release decision names the collateral it releases (L1, L3);
-- its approval releases it.
ALTER TABLE cases
    ADD COLUMN released_collateral_id UUID REFERENCES collateral (id),
    ADD CONSTRAINT cases_release_names_collateral CHECK (
        (kind = 'collateral_release') = (released_collateral_id IS NOT NULL));
