//! Styles, with colour only where NO_COLOR is not set (https://no-color.org).

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn badge(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    /// A context's label, in the colour its config names (reversed without colour).
    pub fn label(&self, colour: Option<&str>) -> Style {
        let c = match colour {
            Some("red") => Color::Red,
            Some("yellow") => Color::Yellow,
            Some("green") => Color::Green,
            Some("blue") => Color::Blue,
            Some("magenta") => Color::Magenta,
            Some("cyan") => Color::Cyan,
            _ => return Style::new().add_modifier(Modifier::BOLD),
        };
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(c)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn header(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn marked(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Devices the danger rules name (production): bold red, reversed without colour.
    pub fn danger(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn focus_border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.dim()
        }
    }

    /// A device's or an operation's state, coloured by what it means: failures red, work in
    /// progress yellow, done green. A lock state is neither good nor bad: plain.
    pub fn state(&self, state: &str) -> Style {
        let word = state.rsplit(' ').next().unwrap_or(state);
        match word {
            "COMPLETED" | "SUCCEEDED" | "ONLINE" | "HEALTHY" => self.fg(Color::Green),
            "FAILED" | "TIMED_OUT" | "REJECTED" | "UNCONFIRMED" | "OFFLINE" | "ERROR"
            | "UNREACHABLE" | "NOT_AVAILABLE" | "FAILED_TO_SEND" => self.error(),
            "IN_PROGRESS"
            | "QUEUED"
            | "PENDING"
            | "UNLOCKING"
            | "SENDING"
            | "SENT"
            | "RUNNING"
            | "WAITING"
            | "PROVISIONING"
            | "DOWNLOADING"
            | "INSTALLING"
            | "REBOOTING"
            | "AWAITING_PROVISIONING"
            | "PAUSED" => self.fg(Color::Yellow),
            "UPDATE_NEEDED" => self.fg(Color::Cyan),
            "CANCELED" | "SKIPPED" => self.dim(),
            _ => Style::new(),
        }
    }
}
