//! The job and task forms and the confirmation dialog. Every field is checked against the
//! API model as it is typed; a form with errors cannot be submitted and says why.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::fleet::{Device, Operation, Plan, Service, SnowOptions, highest, validate};

/// From this many devices up, the operator types the number to confirm.
pub const TYPE_TO_CONFIRM_FROM: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    Ota,
    Reboot,
    Unlock,
}

impl FormKind {
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
}

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Self::ImageVersion => "Image version",
            Self::AllowMajor => "Allow major version update",
            Self::Description => "Description (Snow)",
            Self::Tags => "Tags (Snow, k=v ...)",
        }
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
    pub focus: usize,
    /// Why the last submit was refused.
    pub refused: Option<String>,
}

/// What a key did to a form.
#[derive(Debug, PartialEq)]
pub enum FormOutcome {
    Stay,
    Cancel,
    Submit(Plan),
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
            focus: 0,
            refused: None,
        }
    }

    pub fn fields(&self) -> Vec<Field> {
        let any_snow = self.targets.iter().any(|d| d.service == Service::Snow);
        match self.kind {
            FormKind::Ota => vec![Field::ImageVersion, Field::AllowMajor],
            FormKind::Reboot if any_snow => vec![Field::Description, Field::Tags],
            FormKind::Reboot => vec![],
            FormKind::Unlock => vec![Field::Description, Field::Tags],
        }
    }

    pub fn focused(&self) -> Option<Field> {
        self.fields().get(self.focus).copied()
    }

    pub fn input(&self, field: Field) -> Option<&Input> {
        match field {
            Field::ImageVersion => Some(&self.image_version),
            Field::Description => Some(&self.description),
            Field::Tags => Some(&self.tags),
            Field::AllowMajor => None,
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
                Field::AllowMajor => Ok(()),
            };
            if let Err(e) = result {
                out.push((field, e));
            }
        }
        out
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
        let refs: Vec<&Device> = self.targets.iter().collect();
        Some(Plan::new(operation, snow, &refs))
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
        let refs: Vec<&Device> = self.targets.iter().collect();
        Plan::new(operation, SnowOptions::default(), &refs)
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
            KeyCode::Char(' ') if self.focused() == Some(Field::AllowMajor) => {
                self.allow_major = !self.allow_major
            }
            _ if key.modifiers.contains(KeyModifiers::CONTROL) => {}
            _ => {
                let event = TermEvent::Key(key);
                match self.focused() {
                    Some(Field::ImageVersion) => drop(self.image_version.handle_event(&event)),
                    Some(Field::Description) => drop(self.description.handle_event(&event)),
                    Some(Field::Tags) => drop(self.tags.handle_event(&event)),
                    _ => {}
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
            Some(plan) => FormOutcome::Submit(plan),
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
    pub typed: Input,
    pub refused: Option<String>,
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
        Self {
            plan,
            panorama,
            snow,
            typed: Input::default(),
            refused: None,
        }
    }

    pub fn must_type(&self) -> bool {
        self.plan.device_count() >= TYPE_TO_CONFIRM_FROM
    }

    pub fn key(&mut self, key: KeyEvent) -> ConfirmOutcome {
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
        let mut confirm = Confirm::new(plan, |k| k.id.clone());
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
