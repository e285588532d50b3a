//! Keys to actions, as data: the event loop looks keys up here and the help overlay is
//! generated from the same table, so the two cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    Help,
    ErrorLog,
    Close,
    Quit,
    ForceQuit,
    Refresh,
    Command,
    Filter,
    Sort,
    SortReverse,
    Mark,
    MarkAll,
    ClearMarks,
    Open,
    Ota,
    Reboot,
    Unlock,
    CancelTask,
    PauseRollout,
    Promote,
    AbortRollout,
    RetryRest,
    OpenResult,
    ClearFinished,
    Drift,
    Unfinished,
    Team,
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    Devices,
    Results,
}

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    /// How the help overlay writes the keys.
    pub shown: &'static str,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    /// Starts a call that changes devices.
    pub mutating: bool,
    /// The key bar's short word for it and how much it matters there (higher stays longer);
    /// none: help only.
    pub hint: Option<(&'static str, u8)>,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn bind(
    keys: &'static [(KeyCode, KeyModifiers)],
    shown: &'static str,
    action: Action,
    scope: Scope,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        shown,
        action,
        scope,
        help,
        mutating: false,
        hint: None,
    }
}

impl Binding {
    /// Marks a binding whose action changes devices.
    const fn changes_devices(self) -> Self {
        Self {
            mutating: true,
            ..self
        }
    }

    /// Shows the binding in the key bar as `word`, kept over lower `priority` when short.
    const fn hint(self, word: &'static str, priority: u8) -> Self {
        Self {
            hint: Some((word, priority)),
            ..self
        }
    }
}

pub const BINDINGS: &[Binding] = &[
    bind(
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑ k",
        Action::Up,
        Scope::Everywhere,
        "move up",
    ),
    bind(
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓ j",
        Action::Down,
        Scope::Everywhere,
        "move down",
    ),
    bind(
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        Action::PageUp,
        Scope::Everywhere,
        "page up",
    ),
    bind(
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        Action::PageDown,
        Scope::Everywhere,
        "page down",
    ),
    bind(
        &[(KeyCode::Char('g'), NONE), (KeyCode::Home, NONE)],
        "g",
        Action::Top,
        Scope::Everywhere,
        "first row",
    ),
    bind(
        &[
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
            (KeyCode::End, NONE),
        ],
        "G",
        Action::Bottom,
        Scope::Everywhere,
        "last row",
    ),
    bind(
        &[(KeyCode::Tab, NONE)],
        "Tab",
        Action::NextPane,
        Scope::Everywhere,
        "next pane",
    )
    .hint("other pane", 60),
    bind(
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "Shift-Tab",
        Action::PrevPane,
        Scope::Everywhere,
        "previous pane",
    ),
    bind(
        &[(KeyCode::Char('?'), NONE), (KeyCode::Char('?'), SHIFT)],
        "?",
        Action::Help,
        Scope::Everywhere,
        "this help",
    )
    .hint("help", 250),
    bind(
        &[(KeyCode::Char('!'), NONE), (KeyCode::Char('!'), SHIFT)],
        "!",
        Action::ErrorLog,
        Scope::Everywhere,
        "error log",
    ),
    bind(
        &[(KeyCode::Esc, NONE)],
        "Esc",
        Action::Close,
        Scope::Everywhere,
        "close / clear filter, error",
    ),
    bind(
        &[(KeyCode::Char('q'), NONE)],
        "q",
        Action::Quit,
        Scope::Everywhere,
        "quit (asks if work runs)",
    )
    .hint("quit", 255),
    bind(
        &[(KeyCode::Char('c'), CTRL)],
        "Ctrl-C",
        Action::ForceQuit,
        Scope::Everywhere,
        "quit (twice forces)",
    ),
    bind(
        &[(KeyCode::Char('R'), SHIFT), (KeyCode::Char('R'), NONE)],
        "R",
        Action::Refresh,
        Scope::Everywhere,
        "refresh devices (after an error: reload configuration)",
    ),
    bind(
        &[(KeyCode::Char(':'), NONE), (KeyCode::Char(':'), SHIFT)],
        ":",
        Action::Command,
        Scope::Everywhere,
        "command: :ctx NAME, :region R[,R], :profile P, :q (Tab completes)",
    )
    .hint("command", 80),
    bind(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        Action::Filter,
        Scope::Everywhere,
        "filter the devices (from either pane)",
    )
    .hint("filter", 200),
    bind(
        &[(KeyCode::Char('s'), NONE)],
        "s",
        Action::Sort,
        Scope::Devices,
        "sort by next column",
    )
    .hint("sort", 70),
    bind(
        &[(KeyCode::Char('S'), SHIFT), (KeyCode::Char('S'), NONE)],
        "S",
        Action::SortReverse,
        Scope::Devices,
        "reverse the sort",
    ),
    bind(
        &[(KeyCode::Char(' '), NONE)],
        "Space",
        Action::Mark,
        Scope::Devices,
        "mark / unmark device",
    )
    .hint("mark", 190),
    bind(
        &[(KeyCode::Char('a'), NONE)],
        "a",
        Action::MarkAll,
        Scope::Devices,
        "mark all shown",
    ),
    bind(
        &[(KeyCode::Char('A'), SHIFT), (KeyCode::Char('A'), NONE)],
        "A",
        Action::ClearMarks,
        Scope::Devices,
        "clear marks",
    ),
    bind(
        &[(KeyCode::Enter, NONE)],
        "Enter",
        Action::Open,
        Scope::Devices,
        "details and history",
    )
    .hint("details", 120),
    bind(
        &[(KeyCode::Char('o'), NONE)],
        "o",
        Action::Ota,
        Scope::Devices,
        "OTA update (Panorama)",
    )
    .hint("OTA", 180)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('b'), NONE)],
        "b",
        Action::Reboot,
        Scope::Devices,
        "reboot (Panorama or Snow)",
    )
    .hint("reboot", 170)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('u'), NONE)],
        "u",
        Action::Unlock,
        Scope::Devices,
        "unlock (Snow)",
    )
    .hint("unlock", 160)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('c'), NONE)],
        "c",
        Action::CancelTask,
        Scope::Results,
        "cancel Snow task (queued)",
    )
    .hint("cancel", 150)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('p'), NONE)],
        "p",
        Action::PauseRollout,
        Scope::Results,
        "pause the rollout",
    )
    .hint("pause", 170)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('P'), SHIFT), (KeyCode::Char('P'), NONE)],
        "P",
        Action::Promote,
        Scope::Results,
        "promote the rollout",
    )
    .hint("promote", 170)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('X'), SHIFT), (KeyCode::Char('X'), NONE)],
        "X",
        Action::AbortRollout,
        Scope::Results,
        "abort the rollout (asks)",
    )
    .hint("abort", 170)
    .changes_devices(),
    bind(
        &[(KeyCode::Char('r'), NONE)],
        "r",
        Action::RetryRest,
        Scope::Results,
        "retry the rest (ended)",
    )
    .hint("retry", 140)
    .changes_devices(),
    bind(
        &[(KeyCode::Enter, NONE)],
        "Enter",
        Action::OpenResult,
        Scope::Results,
        "the job or execution: DescribeDeviceJob / DescribeExecution",
    )
    .hint("open", 165),
    bind(
        &[(KeyCode::Char('C'), SHIFT), (KeyCode::Char('C'), NONE)],
        "C",
        Action::ClearFinished,
        Scope::Results,
        "clear finished plans",
    )
    .hint("clear done", 90),
    bind(
        &[(KeyCode::Char('D'), SHIFT), (KeyCode::Char('D'), NONE)],
        "D",
        Action::Drift,
        Scope::Everywhere,
        "drift: devices per software version (also :drift)",
    )
    .hint("drift", 100),
    bind(
        &[(KeyCode::Char('J'), SHIFT), (KeyCode::Char('J'), NONE)],
        "J",
        Action::Unfinished,
        Scope::Everywhere,
        "unfinished plans in the journal (resume / discard)",
    ),
    bind(
        &[(KeyCode::Char('T'), SHIFT), (KeyCode::Char('T'), NONE)],
        "T",
        Action::Team,
        Scope::Everywhere,
        "the team's plans, live (:team; with --team)",
    ),
];

pub fn is_mutating(action: Action) -> bool {
    BINDINGS.iter().any(|b| b.action == action && b.mutating)
}

/// The action a key means in `scope`, if any.
pub fn action(key: &KeyEvent, scope: Scope) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::Everywhere || b.scope == scope)
        .find(|b| {
            b.keys
                .iter()
                .any(|(code, mods)| *code == key.code && *mods == key.modifiers)
        })
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_quit_are_the_last_hints_to_go() {
        let top: Vec<&str> = {
            let mut hinted: Vec<(&str, u8)> = BINDINGS.iter().filter_map(|b| b.hint).collect();
            hinted.sort_by_key(|h| std::cmp::Reverse(h.1));
            hinted.iter().take(2).map(|h| h.0).collect()
        };
        assert_eq!(top, ["quit", "help"]);
        // The key bar puts its Esc hint in the first binding's place: it has none of its own.
        assert!(BINDINGS[0].hint.is_none());
    }

    #[test]
    fn keys_map_to_actions_in_their_scope() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(action(&key('j'), Scope::Devices), Some(Action::Down));
        assert_eq!(action(&key('o'), Scope::Devices), Some(Action::Ota));
        assert_eq!(action(&key('o'), Scope::Results), None);
        assert_eq!(action(&key('c'), Scope::Results), Some(Action::CancelTask));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_c, Scope::Devices), Some(Action::ForceQuit));
    }

    #[test]
    fn no_key_means_two_things_in_one_scope() {
        for scope in [Scope::Devices, Scope::Results] {
            let visible: Vec<&Binding> = BINDINGS
                .iter()
                .filter(|b| b.scope == Scope::Everywhere || b.scope == scope)
                .collect();
            for (i, a) in visible.iter().enumerate() {
                for b in &visible[i + 1..] {
                    assert!(
                        !a.keys.iter().any(|k| b.keys.contains(k)),
                        "{:?} and {:?} share a key",
                        a.action,
                        b.action
                    );
                }
            }
        }
    }
}
