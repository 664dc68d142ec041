-- Running totals of active reservations (R6). Every approval checks the LCR
-- floor against the liquidity committed since the last position; summing
-- every active reservation for that grows with the book. The trigger below
-- keeps the sum of active reservations in 64 stripes instead, so the check
-- reads 64 rows plus the few reservations past their expiry that the
-- watcher has not closed yet. Each transaction adds to one stripe (chosen
-- by its transaction id), so concurrent approvals rarely wait for each
-- other and no transaction holds two stripes (no deadlock). The totals are
-- derived data: only the trigger writes them (SECURITY DEFINER), no
-- service role may.
CREATE TABLE liquidity_totals (
    stripe SMALLINT PRIMARY KEY CHECK (stripe BETWEEN 0 AND 63),
    active_minor BIGINT NOT NULL
);

INSERT INTO liquidity_totals (stripe, active_minor)
SELECT stripe, 0 FROM generate_series(0, 63) AS stripe;
UPDATE liquidity_totals
SET active_minor = (SELECT COALESCE(SUM(amount_minor), 0) FROM reservations WHERE status = 'active')
WHERE stripe = 0;

CREATE FUNCTION creditops_liquidity_totals() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    delta BIGINT := 0;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.status = 'active' THEN
        delta := NEW.amount_minor;
    ELSIF TG_OP = 'UPDATE' AND OLD.status = 'active' AND NEW.status <> 'active' THEN
        delta := -OLD.amount_minor;
    ELSIF TG_OP = 'UPDATE' AND OLD.status = 'active'
        AND NEW.amount_minor <> OLD.amount_minor THEN
        delta := NEW.amount_minor - OLD.amount_minor;
    END IF;
    IF delta <> 0 THEN
        UPDATE liquidity_totals SET active_minor = active_minor + delta
        WHERE stripe = (pg_current_xact_id()::text::bigint % 64);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER reservations_liquidity_totals
    AFTER INSERT OR UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION creditops_liquidity_totals();
