//! The Lua scripts, each prefixed with `lua/prelude.lua` (and those that change an incident
//! with `lua/incident.lua`). `ack.lua` is also prefixed with the
//! answer transition table generated from [`crate::domain::callout::transition`].

use redis::Script;

/// A script that changes an incident: also prefixed with `lua/incident.lua`, which names the
/// incident key set every such script is given.
macro_rules! incident_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/prelude.lua"),
            "\n",
            include_str!("lua/incident.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/prelude.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script muster runs.
pub(crate) struct Scripts {
    pub raise: Script,
    pub create_callouts: Script,
    pub ack: Script,
    pub deliveries_begin: Script,
    pub deliveries_done: Script,
    pub finish_entry: Script,
    pub promote_due: Script,
    pub stand_down: Script,
    pub stand_down_sweep: Script,
    pub project_status: Script,
    pub roster_put: Script,
    pub step_begin: Script,
    pub requirement_short: Script,
    pub timers_due: Script,
    pub upgrade: Script,
    pub sms_code: Script,
    pub arm_timer: Script,
    pub sms_rate: Script,
    pub sms_receipt: Script,
    pub sms_note: Script,
    pub engage: Script,
    pub disengage: Script,
    pub volunteer_put: Script,
    pub volunteer_erase: Script,
    pub team_create: Script,
    pub team_update: Script,
    pub team_delete: Script,
    pub drill_put: Script,
    pub drills_due: Script,
    pub drill_cancel: Script,
    pub cap_note: Script,
    pub cap_decide: Script,
    pub audit_seal: Script,
    pub lease: Script,
    pub audit_refused: Script,
    pub retire: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let ack = format!(
            "{}\n{}\nlocal T = {}\n{}",
            include_str!("lua/prelude.lua"),
            include_str!("lua/incident.lua"),
            crate::domain::callout::lua_transition_table(),
            include_str!("lua/ack.lua")
        );
        Scripts {
            raise: incident_script!("raise.lua"),
            create_callouts: incident_script!("create_callouts.lua"),
            ack: Script::new(&ack),
            deliveries_begin: incident_script!("deliveries_begin.lua"),
            deliveries_done: incident_script!("deliveries_done.lua"),
            finish_entry: script!("finish_entry.lua"),
            promote_due: script!("promote_due.lua"),
            stand_down: incident_script!("stand_down.lua"),
            stand_down_sweep: incident_script!("stand_down_sweep.lua"),
            project_status: incident_script!("project_status.lua"),
            roster_put: script!("roster_put.lua"),
            step_begin: incident_script!("step_begin.lua"),
            requirement_short: incident_script!("requirement_short.lua"),
            timers_due: script!("timers_due.lua"),
            upgrade: incident_script!("upgrade.lua"),
            sms_code: script!("sms_code.lua"),
            arm_timer: script!("arm_timer.lua"),
            sms_rate: script!("sms_rate.lua"),
            sms_receipt: incident_script!("sms_receipt.lua"),
            sms_note: script!("sms_note.lua"),
            engage: script!("engage.lua"),
            disengage: script!("disengage.lua"),
            volunteer_put: script!("volunteer_put.lua"),
            volunteer_erase: script!("volunteer_erase.lua"),
            team_create: script!("team_create.lua"),
            drill_put: script!("drill_put.lua"),
            drills_due: script!("drills_due.lua"),
            drill_cancel: script!("drill_cancel.lua"),
            cap_note: incident_script!("cap_note.lua"),
            cap_decide: script!("cap_decide.lua"),
            audit_seal: script!("audit_seal.lua"),
            lease: script!("lease.lua"),
            audit_refused: script!("audit_refused.lua"),
            retire: incident_script!("retire.lua"),
            team_update: script!("team_update.lua"),
            team_delete: script!("team_delete.lua"),
        }
    }
}
