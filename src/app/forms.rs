//! The job and task forms and the confirmation dialog. Every field is checked against the
//! API model as it is typed; a form with errors cannot be submitted and says why.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::fleet::{Device, Operation, Service, SnowOptions, highest, validate};
use crate::ops::rollout::{
    Gate, OnBreach, PRESETS, Rollout, Threshold, parse_duration, parse_waves, wave_sizes,
};
use crate::ops::{Plan, Preflight};

/// From this many devices up, the operator types the number to confirm.
pub const TYPE_TO_CONFIRM_FROM: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    Ota,
    Reboot,
    Unlock,
}

impl FormKind {
    /// Why the operation applies to none of `targets`, if it does not.
    pub fn applies_to_none(self, targets: &[Device]) -> Option<String> {
        let (service, what) = match self {
            Self::Reboot => return None,
            Self::Ota => (
                Service::Panorama,
                "An OTA update applies to Panorama appliances only",
            ),
            Self::Unlock => (Service::Snow, "Unlock applies to Snow devices only"),
        };
        if targets.iter().any(|d| d.service == service) {
            return None;
        }
        let n = targets.len();
        let other = match service {
            Service::Panorama => "Snow device",
            Service::Snow => "Panorama appliance",
        };
        let plural = if n == 1 { "" } else { "s" };
        Some(format!(
            "{what}, and the selection is {n} {other}{plural}: mark some {} first",
            match service {
                Service::Panorama => "appliances",
                Service::Snow => "Snow devices",
            }
        ))
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Ota => "OTA update",
            Self::Reboot => "Reboot",
            Self::Unlock => "Unlock",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ImageVersion,
    AllowMajor,
    Description,
    Tags,
    Waves,
    MaxFailed,
    MinDone,
    Bake,
    Approve,
    OnBreach,
    Canary,
    IncludeSkipped,
    Alarms,
}

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Self::ImageVersion => "Image version",
            Self::AllowMajor => "Allow major version update",
            Self::Description => "Description (Snow)",
            Self::Tags => "Tags (Snow, k=v ...)",
            Self::Waves => "Waves (Space: presets)",
            Self::MaxFailed => "Max failed (count or %)",
            Self::MinDone => "Min done before counting",
            Self::Bake => "Bake between waves",
            Self::Approve => "Approve each wave",
            Self::OnBreach => "On a breach",
            Self::Canary => "Canary first (filter)",
            Self::IncludeSkipped => "Send preflight's skips",
            Self::Alarms => "Abort on alarms (names)",
        }
    }

    /// A yes/no (or one of two) that Space flips.
    pub fn is_toggle(self) -> bool {
        matches!(
            self,
            Self::AllowMajor | Self::Approve | Self::OnBreach | Self::IncludeSkipped
        )
    }
}

/// The staging part of a form: waves, gate, canary and preflight.
#[derive(Debug, Clone)]
pub struct Staging {
    pub waves: Input,
    pub max_failed: Input,
    pub min_done: Input,
    pub bake: Input,
    pub approve: bool,
    pub on_breach: OnBreach,
    pub canary: Input,
    pub include_skipped: bool,
    /// CloudWatch alarms that breach the gate, comma-separated.
    pub alarms: Input,
    /// Alarms, windows and application health, from the session's flags and context.
    pub watch: crate::ops::rollout::Watch,
}

impl Default for Staging {
    fn default() -> Self {
        Self {
            waves: Input::new("rest".into()),
            max_failed: Input::new("0".into()),
            min_done: Input::new("1".into()),
            bake: Input::new("0".into()),
            approve: false,
            on_breach: OnBreach::Abort,
            canary: Input::default(),
            include_skipped: false,
            alarms: Input::default(),
            watch: Default::default(),
        }
    }
}

impl Staging {
    /// The preset the waves field shows, if it is one.
    pub fn preset(&self) -> Option<&'static str> {
        PRESETS
            .iter()
            .find(|(_, spec)| *spec == self.waves.value().trim())
            .map(|(label, _)| *label)
    }

    fn next_preset(&mut self) {
        let at = PRESETS
            .iter()
            .position(|(_, spec)| *spec == self.waves.value().trim());
        let next = at.map_or(0, |i| (i + 1) % PRESETS.len());
        self.waves = Input::new(PRESETS[next].1.to_string());
    }

    fn gate_changed(&self) -> bool {
        let d = Self::default();
        self.max_failed.value().trim() != d.max_failed.value()
            || self.min_done.value().trim() != d.min_done.value()
            || self.bake.value().trim() != d.bake.value()
            || self.approve
            || self.on_breach != OnBreach::Abort
    }

    /// The staging as given, or the first field that is wrong and why.
    pub fn rollout(&self, devices: usize) -> Result<Rollout, (Field, String)> {
        let waves = parse_waves(self.waves.value()).map_err(|e| (Field::Waves, e))?;
        let max_failed: Threshold = self
            .max_failed
            .value()
            .parse()
            .map_err(|e| (Field::MaxFailed, e))?;
        let min_done = match self.min_done.value().trim().parse::<usize>() {
            Ok(n) if n >= 1 && n <= devices.max(1) => n,
            // More than the plan has: the gate would never count a failure.
            Ok(n) if n >= 1 => {
                return Err((
                    Field::MinDone,
                    format!(
                        "{n} is more than the plan's {devices} devices: the gate would never count a failure"
                    ),
                ));
            }
            _ => return Err((Field::MinDone, "a count, 1 or more".into())),
        };
        let bake = parse_duration(self.bake.value()).map_err(|e| (Field::Bake, e))?;
        let several = wave_sizes(&waves, devices).len() > 1;
        let gate = (several || self.gate_changed()).then_some(Gate {
            max_failed,
            min_done,
            bake_secs: bake.as_secs(),
            approve: self.approve,
            on_breach: self.on_breach,
        });
        let mut watch = self.watch.clone();
        watch.alarms = self
            .alarms
            .value()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        for a in &watch.alarms {
            crate::fleet::validate::alarm_name(a).map_err(|e| (Field::Alarms, e))?;
        }
        Ok(Rollout { waves, gate, watch })
    }
}

#[derive(Debug, Clone)]
pub struct Form {
    pub kind: FormKind,
    pub targets: Vec<Device>,
    pub image_version: Input,
    pub allow_major: bool,
    pub description: Input,
    pub tags: Input,
    pub staging: Staging,
    pub focus: usize,
    /// Why the last submit was refused.
    pub refused: Option<String>,
    /// Team mode: the targets another plan holds, with who holds them (left out of the plan).
    pub held: std::collections::HashMap<crate::fleet::DeviceKey, String>,
}

/// What a key did to a form.
#[derive(Debug, PartialEq)]
pub enum FormOutcome {
    Stay,
    Cancel,
    Submit(Box<Plan>),
}

impl Form {
    pub fn new(kind: FormKind, targets: Vec<Device>) -> Self {
        // Prefill the highest version available among the marked appliances.
        let available = highest(
            targets
                .iter()
                .filter(|d| d.service == Service::Panorama)
                .filter_map(|d| d.available_software.as_deref()),
        )
        .unwrap_or("")
        .to_string();
        Self {
            kind,
            targets,
            image_version: Input::new(available),
            allow_major: false,
            description: Input::default(),
            tags: Input::default(),
            staging: Staging::default(),
            focus: 0,
            refused: None,
            held: Default::default(),
        }
    }

    pub fn fields(&self) -> Vec<Field> {
        let any_snow = self.targets.iter().any(|d| d.service == Service::Snow);
        let mut fields = match self.kind {
            FormKind::Ota => vec![Field::ImageVersion, Field::AllowMajor],
            FormKind::Reboot if any_snow => vec![Field::Description, Field::Tags],
            FormKind::Reboot => vec![],
            FormKind::Unlock => vec![Field::Description, Field::Tags],
        };
        fields.extend([
            Field::Waves,
            Field::MaxFailed,
            Field::MinDone,
            Field::Bake,
            Field::Approve,
            Field::OnBreach,
            Field::Canary,
            Field::IncludeSkipped,
            Field::Alarms,
        ]);
        fields
    }

    pub fn focused(&self) -> Option<Field> {
        self.fields().get(self.focus).copied()
    }

    pub fn input(&self, field: Field) -> Option<&Input> {
        let st = &self.staging;
        match field {
            Field::ImageVersion => Some(&self.image_version),
            Field::Description => Some(&self.description),
            Field::Tags => Some(&self.tags),
            Field::Waves => Some(&st.waves),
            Field::MaxFailed => Some(&st.max_failed),
            Field::MinDone => Some(&st.min_done),
            Field::Bake => Some(&st.bake),
            Field::Canary => Some(&st.canary),
            Field::Alarms => Some(&st.alarms),
            Field::AllowMajor | Field::Approve | Field::OnBreach | Field::IncludeSkipped => None,
        }
    }

    fn input_mut(&mut self, field: Field) -> Option<&mut Input> {
        let st = &mut self.staging;
        match field {
            Field::ImageVersion => Some(&mut self.image_version),
            Field::Description => Some(&mut self.description),
            Field::Tags => Some(&mut self.tags),
            Field::Waves => Some(&mut st.waves),
            Field::MaxFailed => Some(&mut st.max_failed),
            Field::MinDone => Some(&mut st.min_done),
            Field::Bake => Some(&mut st.bake),
            Field::Canary => Some(&mut st.canary),
            Field::Alarms => Some(&mut st.alarms),
            Field::AllowMajor | Field::Approve | Field::OnBreach | Field::IncludeSkipped => None,
        }
    }

    /// Whether a toggle field is on, and how it reads.
    pub fn toggle(&self, field: Field) -> Option<(bool, &'static str)> {
        let st = &self.staging;
        Some(match field {
            Field::AllowMajor => (
                self.allow_major,
                if self.allow_major { "yes" } else { "no" },
            ),
            Field::Approve => (st.approve, if st.approve { "yes" } else { "no" }),
            Field::IncludeSkipped => (
                st.include_skipped,
                if st.include_skipped { "yes" } else { "no" },
            ),
            Field::OnBreach => match st.on_breach {
                OnBreach::Abort => (false, "abort"),
                OnBreach::Pause => (true, "pause"),
            },
            _ => return None,
        })
    }

    fn flip(&mut self, field: Field) {
        let st = &mut self.staging;
        match field {
            Field::AllowMajor => self.allow_major = !self.allow_major,
            Field::Approve => st.approve = !st.approve,
            Field::IncludeSkipped => st.include_skipped = !st.include_skipped,
            Field::OnBreach => {
                st.on_breach = match st.on_breach {
                    OnBreach::Abort => OnBreach::Pause,
                    OnBreach::Pause => OnBreach::Abort,
                }
            }
            Field::Waves => st.next_preset(),
            _ => {}
        }
    }

    fn operation(&self) -> Result<Operation, String> {
        Ok(match self.kind {
            FormKind::Ota => Operation::Ota {
                image_version: validate::image_version(self.image_version.value())?,
                allow_major: self.allow_major,
            },
            FormKind::Reboot => Operation::Reboot,
            FormKind::Unlock => Operation::Unlock,
        })
    }

    /// Each field's error, as typed so far.
    pub fn errors(&self) -> Vec<(Field, String)> {
        let mut out = Vec::new();
        for field in self.fields() {
            let result = match field {
                Field::ImageVersion => {
                    validate::image_version(self.image_version.value()).map(drop)
                }
                Field::Description => validate::description(self.description.value()).map(drop),
                Field::Tags => validate::tags(self.tags.value()).map(drop),
                _ => Ok(()),
            };
            if let Err(e) = result {
                out.push((field, e));
            }
        }
        // Against what preflight leaves in the plan: the gate counts only what is sent.
        if let Err((field, e)) = self.staging.rollout(self.preview().device_count()) {
            out.push((field, e));
        }
        out
    }

    /// A plan of `operation` for the targets, staged and preflighted as the form says.
    fn staged(&self, operation: Operation, snow: SnowOptions) -> Plan {
        let refs: Vec<&Device> = self.targets.iter().collect();
        let preflight = Preflight::new(self.staging.include_skipped, Preflight::DEFAULT_STALE);
        let mut plan = Plan::with(operation, snow, &refs, preflight);
        if !self.held.is_empty() {
            plan.leave_out_held(&self.held, |k| {
                let found = self.targets.iter().find(|d| d.key() == *k);
                found.map_or_else(|| k.id.to_string(), |d| d.label().to_string())
            });
        }
        let canary = crate::fleet::filter::Filter::parse(self.staging.canary.value());
        if !canary.is_empty() {
            let first: std::collections::HashSet<_> = self
                .targets
                .iter()
                .filter(|d| canary.matches(d))
                .map(Device::key)
                .collect();
            plan.canaries_first(|k| first.contains(k));
        }
        if let Ok(rollout) = self.staging.rollout(plan.device_count()) {
            plan.rollout = rollout;
        }
        plan
    }

    /// The plan the form describes, as it stands; None while a field is invalid.
    pub fn plan(&self) -> Option<Plan> {
        if !self.errors().is_empty() {
            return None;
        }
        let operation = self.operation().ok()?;
        let snow = SnowOptions {
            description: validate::description(self.description.value()).ok()?,
            tags: validate::tags(self.tags.value()).ok()?,
        };
        Some(self.staged(operation, snow))
    }

    /// A plan for the warnings shown while typing: the image version as typed, even if
    /// another field is wrong.
    pub fn preview(&self) -> Plan {
        let operation = self.operation().unwrap_or(match self.kind {
            FormKind::Ota => Operation::Ota {
                image_version: self.image_version.value().to_string(),
                allow_major: self.allow_major,
            },
            FormKind::Reboot => Operation::Reboot,
            FormKind::Unlock => Operation::Unlock,
        });
        self.staged(operation, SnowOptions::default())
    }

    pub fn key(&mut self, key: KeyEvent) -> FormOutcome {
        let fields = self.fields();
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancel,
            KeyCode::Tab | KeyCode::Down if !fields.is_empty() => {
                self.focus = (self.focus + 1) % fields.len()
            }
            KeyCode::BackTab | KeyCode::Up if !fields.is_empty() => {
                self.focus = (self.focus + fields.len() - 1) % fields.len()
            }
            KeyCode::Enter => return self.submit(),
            KeyCode::Char(' ')
                if self
                    .focused()
                    .is_some_and(|f| f.is_toggle() || f == Field::Waves) =>
            {
                if let Some(f) = self.focused() {
                    self.flip(f);
                }
            }
            _ => {
                // Typing over a preset starts a list of one's own.
                if self.focused() == Some(Field::Waves)
                    && self.staging.preset().is_some()
                    && matches!(key.code, KeyCode::Char(_))
                    && !key.modifiers.contains(KeyModifiers::CONTROL)
                {
                    self.staging.waves = Input::default();
                }
                let event = TermEvent::Key(key);
                if let Some(input) = self.focused().and_then(|f| self.input_mut(f)) {
                    input.handle_event(&event);
                }
                self.refused = None;
            }
        }
        FormOutcome::Stay
    }

    fn submit(&mut self) -> FormOutcome {
        let errors = self.errors();
        if let Some((field, e)) = errors.first() {
            self.refused = Some(format!("Cannot submit: {} — {e}", field.label()));
            return FormOutcome::Stay;
        }
        match self.plan() {
            Some(plan) if plan.is_empty() => {
                self.refused =
                    Some("Cannot submit: the action applies to none of these devices".into());
                FormOutcome::Stay
            }
            Some(plan) => FormOutcome::Submit(Box::new(plan)),
            None => FormOutcome::Stay,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub plan: Plan,
    /// Labels of the devices, per service, for the dialog.
    pub panorama: Vec<String>,
    pub snow: Vec<String>,
    /// Each wave's labels, grouped by scope ("context/region") and service.
    pub waves: Vec<Vec<WaveGroup>>,
    /// Lines scrolled past in the dialog.
    pub scroll: u16,
    pub typed: Input,
    pub refused: Option<String>,
}

/// One scope's devices of one service in a wave, as the confirmation lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveGroup {
    pub scope: String,
    pub service: Service,
    pub labels: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub enum ConfirmOutcome {
    Stay,
    Cancel,
    Go,
}

impl Confirm {
    pub fn new(plan: Plan, label: impl Fn(&crate::fleet::DeviceKey) -> String) -> Self {
        let panorama = plan.panorama().map(&label).collect();
        let snow = plan
            .targets
            .iter()
            .filter(|k| k.service == crate::fleet::Service::Snow)
            .map(&label)
            .collect();
        let waves = plan
            .waves()
            .iter()
            .map(|w| {
                let mut groups: Vec<WaveGroup> = Vec::new();
                for scope in plan.scope_names().into_iter().chain([String::new()]) {
                    for service in [Service::Panorama, Service::Snow] {
                        let labels: Vec<String> = w
                            .iter()
                            .filter(|k| k.service == service)
                            .filter(|k| plan.scopes.get(*k).map_or("", String::as_str) == scope)
                            .map(&label)
                            .collect();
                        if !labels.is_empty() {
                            groups.push(WaveGroup {
                                scope: scope.clone(),
                                service,
                                labels,
                            });
                        }
                    }
                }
                groups
            })
            .collect();
        Self {
            plan,
            panorama,
            snow,
            waves,
            scroll: 0,
            typed: Input::default(),
            refused: None,
        }
    }

    pub fn must_type(&self) -> bool {
        self.plan.device_count() >= TYPE_TO_CONFIRM_FROM
    }

    pub fn key(&mut self, key: KeyEvent) -> ConfirmOutcome {
        match key.code {
            KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down => self.scroll = self.scroll.saturating_add(1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            _ => return self.answer(key),
        }
        ConfirmOutcome::Stay
    }

    fn answer(&mut self, key: KeyEvent) -> ConfirmOutcome {
        match key.code {
            KeyCode::Esc => ConfirmOutcome::Cancel,
            KeyCode::Char('n') if !self.must_type() => ConfirmOutcome::Cancel,
            KeyCode::Char('y') if !self.must_type() => ConfirmOutcome::Go,
            KeyCode::Enter if !self.must_type() => ConfirmOutcome::Go,
            KeyCode::Enter => {
                if self.typed.value().trim() == self.plan.device_count().to_string() {
                    ConfirmOutcome::Go
                } else {
                    self.refused = Some(format!(
                        "Type {} (the number of devices) to confirm, or Esc to go back",
                        self.plan.device_count()
                    ));
                    ConfirmOutcome::Stay
                }
            }
            _ if self.must_type() => {
                self.typed.handle_event(&TermEvent::Key(key));
                self.refused = None;
                ConfirmOutcome::Stay
            }
            _ => ConfirmOutcome::Stay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn enter() -> KeyEvent {
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
    }

    fn appliance(id: &str, current: &str, available: &str) -> Device {
        let mut d = Device::new(Service::Panorama, id);
        d.current_software = Some(current.into());
        d.available_software = Some(available.into());
        d
    }

    #[test]
    fn ota_prefills_the_highest_available_version_and_warns_of_major_bumps() {
        let mut form = Form::new(
            FormKind::Ota,
            vec![
                appliance("a", "5.0.10", "5.0.21"),
                appliance("b", "4.3.93", "5.0.9"),
            ],
        );
        assert_eq!(form.image_version.value(), "5.0.21");
        // Without AllowMajorVersionUpdate preflight leaves b out, saying why; with it, b is
        // named as a major update.
        let preview = form.preview();
        assert!(preview.major_bumps.is_empty());
        assert_eq!(
            preview
                .left_out()
                .map(|s| s.label.as_str())
                .collect::<Vec<_>>(),
            vec!["b"]
        );
        form.allow_major = true;
        assert_eq!(form.preview().major_bumps, vec!["b".to_string()]);
    }

    #[test]
    fn a_bad_description_refuses_to_submit_and_says_why() {
        let mut snow = Device::new(Service::Snow, "s1");
        snow.status = "LOCKED".into();
        let mut form = Form::new(FormKind::Unlock, vec![snow]);
        for c in "open; now".chars() {
            form.key(key(c));
        }
        assert_eq!(form.errors().len(), 1);
        assert_eq!(form.key(enter()), FormOutcome::Stay);
        let why = form.refused.clone().unwrap();
        assert!(why.contains("Description"), "{why}");
        assert!(why.contains("';'"), "{why}");
        // Mend it and it goes.
        for _ in 0..5 {
            form.key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        }
        assert!(matches!(form.key(enter()), FormOutcome::Submit(_)));
    }

    #[test]
    fn ten_devices_or_more_need_the_number_typed() {
        let devices: Vec<Device> = (0..12)
            .map(|i| appliance(&format!("p{i}"), "5.0.10", "5.0.21"))
            .collect();
        let refs: Vec<&Device> = devices.iter().collect();
        let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
        let mut confirm = Confirm::new(plan, |k| k.id.to_string());
        assert!(confirm.must_type());
        assert_eq!(confirm.key(key('y')), ConfirmOutcome::Stay);
        assert_eq!(confirm.key(enter()), ConfirmOutcome::Stay);
        assert!(confirm.refused.as_deref().unwrap().contains("Type 12"));
        confirm.typed = Input::default();
        confirm.key(key('1'));
        confirm.key(key('2'));
        assert_eq!(confirm.key(enter()), ConfirmOutcome::Go);
    }
}
