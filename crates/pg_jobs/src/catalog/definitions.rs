//! `jobs.definition`, the portable copy of this database's queues, jobs
//! and daemons that pg_dump carries (owners by name). Triggers in the
//! schema keep it in step and make restored rows live (`sql/schema.sql`,
//! "Backups"); what the workers do here is keep the owners' names current
//! after `ALTER ROLE … RENAME` (a role's name is only written when its
//! rows change, and a dump must name the role as it is called now).

use crate::catalog::schema_version;
use crate::pg::error::OrRaise;
use pgrx::spi::SpiClient;

/// Give every definition its owner's current name.
pub(crate) fn refresh_owner_names(client: &mut SpiClient) {
    if !schema_version::has_definitions() {
        return;
    }
    client
        .update(
            "UPDATE jobs.definition d SET owner = r.rolname FROM pg_catalog.pg_roles r
              WHERE r.oid OPERATOR(pg_catalog.=) d.owner_oid AND d.owner OPERATOR(pg_catalog.<>) r.rolname",
            None,
            &[],
        )
        .or_raise("refreshing the owners' names of jobs.definition");
}
