-- security_pii_attack: pii_create_masked_view, the one SECURITY DEFINER function, cannot be used to read another
-- owner's table (issue 19, finding 3). The attack: an administrator who is not a superuser finds a table of another
-- role, in another schema, that carries a policy named brand_isolation; she adds a masking rule for it and calls
-- pii_create_masked_view, which used to grant SELECT on the table to retail_mid_admin. Now the function takes only
-- the extension's own tables and checks the caller's rights: both routes fail with 42501 and she still cannot read it.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
CREATE ROLE pa_mallory LOGIN IN ROLE retail_mid_admin;
CREATE ROLE pa_hr LOGIN;
CREATE SCHEMA pa_hr AUTHORIZATION pa_hr;
GRANT USAGE ON SCHEMA pa_hr TO PUBLIC;

-- the victim: a table of pa_hr with a policy that happens to be named brand_isolation
SET SESSION AUTHORIZATION pa_hr;
CREATE TABLE pa_hr.salary (brand text, employee text, salary numeric);
INSERT INTO pa_hr.salary VALUES ('a', 'ann', 9000), ('b', 'bob', 8000);
ALTER TABLE pa_hr.salary ENABLE ROW LEVEL SECURITY;
CREATE POLICY brand_isolation ON pa_hr.salary USING (true);
-- and a table of retail_mid's schema that is not the extension's (created by a user, not by the extension's script)
RESET SESSION AUTHORIZATION;
CREATE TABLE retail_mid.pa_not_member (brand text, secret text);
ALTER TABLE retail_mid.pa_not_member OWNER TO pa_hr;
INSERT INTO retail_mid.pa_not_member VALUES ('a', 'x');

SET SESSION AUTHORIZATION pa_mallory;
SELECT session_user, current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
SELECT has_table_privilege('pa_hr.salary', 'SELECT') AS can_read_before;
SELECT * FROM pa_hr.salary;
-- the attack, through a rule (the trigger calls the function) and directly
\set VERBOSITY sqlstate
INSERT INTO retail_mid.pii_mask_rule VALUES ('pa_hr.salary', 'employee', 'hash');
SELECT retail_mid.pii_create_masked_view('pa_hr.salary');
SELECT retail_mid.pii_create_masked_view('retail_mid.pa_not_member');
\set VERBOSITY default
SELECT retail_mid.pii_create_masked_view('pa_hr.salary');
-- nothing was created or granted: she still cannot read it
SELECT has_table_privilege('pa_hr.salary', 'SELECT') AS can_read_after, to_regclass('pa_hr.salary_masked') AS masked_view,
       has_table_privilege('retail_mid_admin', 'pa_hr.salary', 'SELECT') AS admins_read,
       has_table_privilege('retail_mid_view_owner', 'pa_hr.salary', 'SELECT') AS view_owner_reads;
SELECT * FROM pa_hr.salary;
SELECT count(*) AS rules FROM retail_mid.pii_mask_rule WHERE table_name::text LIKE 'pa\_%';
RESET SESSION AUTHORIZATION;

-- the caller's rights are checked too: a role given EXECUTE that is no admin and cannot read the table is refused
CREATE ROLE pa_eve LOGIN;
GRANT EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) TO pa_eve;
GRANT USAGE ON SCHEMA retail_mid TO pa_eve;
SET SESSION AUTHORIZATION pa_eve;
SELECT retail_mid.pii_create_masked_view('retail_mid.customer_key');
RESET SESSION AUTHORIZATION;
REVOKE EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) FROM pa_eve;
REVOKE USAGE ON SCHEMA retail_mid FROM pa_eve;

-- the extension's own tables still work for an administrator (rule added, view made, rule removed)
SET ROLE pa_mallory;
INSERT INTO retail_mid.pii_mask_rule VALUES ('retail_mid.ods_order', 'customer_id', 'hash');
SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'retail_mid.ods_order_masked'::regclass;
DELETE FROM retail_mid.pii_mask_rule WHERE table_name = 'retail_mid.ods_order'::regclass;
RESET ROLE;
DROP VIEW retail_mid.ods_order_masked;
SELECT retail_mid.security_grant('retail_mid.ods_order');

-- clean up
DROP TABLE pa_hr.salary, retail_mid.pa_not_member;
DROP SCHEMA pa_hr;
DROP ROLE pa_mallory, pa_hr, pa_eve;
