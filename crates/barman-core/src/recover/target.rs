//! Recovery targets: the target options, the target action, the target timeline, and the target as Barman describes it.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What happens when the recovery target is reached (`--target-action`,
/// `recovery_target_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// Pause replay (PostgreSQL's default), so the result can be inspected.
    Pause,
    /// Stop the server.
    Shutdown,
    /// End recovery and accept connections for writing.
    Promote,
}

impl FromStr for TargetAction {
    type Err = Error;

    /// ```
    /// use barman_core::recover::TargetAction;
    /// assert_eq!("promote".parse::<TargetAction>()?, TargetAction::Promote);
    /// assert!("resume".parse::<TargetAction>().is_err());
    /// # Ok::<(), barman_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pause" => Ok(TargetAction::Pause),
            "shutdown" => Ok(TargetAction::Shutdown),
            "promote" => Ok(TargetAction::Promote),
            other => Err(Error::refused(
                Refusal::InvalidRequest,
                format!("invalid target action {other:?}: expected pause, shutdown or promote"),
            )),
        }
    }
}

impl fmt::Display for TargetAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetAction::Pause => "pause",
            TargetAction::Shutdown => "shutdown",
            TargetAction::Promote => "promote",
        })
    }
}

/// The recovery targets as given on the command line, at most one of which may be set;
/// [`Targets::into_target`] parses and checks them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// `--target-time`: `YYYY-MM-DD HH:MM[:SS[.ffffff]]`, optionally with an offset.
    pub time: Option<String>,
    /// `--target-xid`.
    pub xid: Option<String>,
    /// `--target-lsn`.
    pub lsn: Option<String>,
    /// `--target-name`.
    pub name: Option<String>,
    /// `--target-immediate`.
    pub immediate: bool,
}

impl Targets {
    /// The one target asked for, parsed.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when several targets are given or a value does not parse.
    ///
    /// ```
    /// use barman_core::recover::{RecoveryTarget, Targets};
    ///
    /// let t = Targets { xid: Some("742".into()), ..Targets::default() };
    /// assert_eq!(t.into_target()?, Some(RecoveryTarget::Xid(742)));
    /// let two = Targets { xid: Some("742".into()), immediate: true, ..Targets::default() };
    /// assert!(two.into_target().is_err());
    /// # Ok::<(), barman_core::Error>(())
    /// ```
    pub fn into_target(self) -> Result<Option<RecoveryTarget>> {
        let given = [
            self.time.is_some(),
            self.xid.is_some(),
            self.lsn.is_some(),
            self.name.is_some(),
            self.immediate,
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::refused(
                Refusal::InvalidRequest,
                "you cannot specify multiple targets for the recovery operation",
            ));
        }
        if let Some(t) = self.time {
            let parsed = t.parse::<PyDateTime>().map_err(|e| {
                Error::refused(Refusal::InvalidRequest, format!("invalid target time: {e}"))
            })?;
            return Ok(Some(RecoveryTarget::Time(parsed)));
        }
        if let Some(x) = self.xid {
            let xid = x.trim().parse::<u64>().map_err(|_| {
                Error::refused(Refusal::InvalidRequest, format!("invalid target xid {x:?}"))
            })?;
            return Ok(Some(RecoveryTarget::Xid(xid)));
        }
        if let Some(l) = self.lsn {
            let lsn = l.trim().parse::<Lsn>().map_err(|e| {
                Error::refused(
                    Refusal::InvalidRequest,
                    format!("invalid target LSN {l:?}: {e}"),
                )
            })?;
            return Ok(Some(RecoveryTarget::Lsn(lsn)));
        }
        if let Some(n) = self.name {
            return Ok(Some(RecoveryTarget::Name(n)));
        }
        Ok(self.immediate.then_some(RecoveryTarget::Immediate))
    }
}

/// Parses `--target-tli`: a number, `current` or `latest`.
///
/// # Errors
///
/// [`Error::Refused`] for anything else.
///
/// ```
/// use barman_core::recover::{parse_target_tli, TargetTimeline};
/// assert_eq!(parse_target_tli("latest")?, TargetTimeline::Latest);
/// assert!(parse_target_tli("-1").is_err());
/// # Ok::<(), barman_core::Error>(())
/// ```
pub fn parse_target_tli(s: &str) -> Result<TargetTimeline> {
    s.trim().parse().map_err(|e| {
        Error::refused(
            Refusal::InvalidRequest,
            format!("invalid target timeline {s:?} (a number, current or latest): {e}"),
        )
    })
}

/// Barman's "Doing PITR. Recovery target ..." description.
pub(super) fn describe_target(
    options: &RecoverOptions,
    plan: &RecoveryPlan,
    tz: &TimeZone,
) -> Result<Option<String>> {
    let mut parts = Vec::new();
    match &options.target {
        Some(RecoveryTarget::Time(t)) => parts.push(format!("time: '{}'", aware(t, tz)?)),
        Some(RecoveryTarget::Xid(x)) => parts.push(format!("xid: '{x}'")),
        Some(RecoveryTarget::Lsn(l)) => parts.push(format!("lsn: '{l}'")),
        Some(RecoveryTarget::Name(n)) => parts.push(format!("name: '{n}'")),
        Some(RecoveryTarget::Immediate) => parts.push("immediate: True".to_owned()),
        None => {}
    }
    if options.target_tli.is_some() {
        parts.push(format!("timeline: '{}'", plan.target_timeline));
    }
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// `t` with an explicit offset: a naive time is read in `tz`, as Barman does.
pub(super) fn aware(t: &PyDateTime, tz: &TimeZone) -> Result<PyDateTime> {
    if t.offset_seconds().is_some() {
        return Ok(*t);
    }
    let ts = t
        .to_timestamp(tz)
        .map_err(|e| Error::refused(Refusal::InvalidRequest, format!("target time {t}: {e}")))?;
    Ok(PyDateTime::from_timestamp(ts, tz.to_offset(ts).seconds()))
}
