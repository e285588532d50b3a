//! One CancelTask per task: journaled like every mutating call, never resent by the SDK, an
//! unanswered one resolved by reading the task's executions.

use super::dispatch::Log;
use super::{Internal, Worker};
use crate::aws;
use crate::fleet::Service;
use crate::journal::Call;
use crate::protocol::Event;

impl Worker {
    /// One CancelTask per task, journaled like every mutating call, never resent by the SDK;
    /// an unanswered one is resolved by reading the task's executions.
    pub(super) fn cancel(&mut self, task: String) {
        if self.settings.read_only {
            return self.emit(Event::Failure(format!(
                "Read-only mode: CancelTask {task} was not sent"
            )));
        }
        if !self.canceling.insert(task.clone()) {
            return;
        }
        let Some(ops) = self.status.snow_tasks.get(&task).cloned() else {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: the task has ended or is not followed here"
            )));
        };
        let plan = ops
            .first()
            .and_then(|(_, op)| self.book.get(*op))
            .map(|o| o.plan.clone())
            .unwrap_or_default();
        let log = Log {
            journal: self.journal.clone(),
            plan,
        };
        let devices: Vec<String> = ops.iter().map(|(d, _)| d.clone()).collect();
        if let Err(e) = log.intent(
            Service::Snow,
            Call::CancelTask,
            &devices,
            None,
            &[],
            Some(&task),
        ) {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: {e}"
            )));
        }
        let Some(client) = self.task_place(&task).map(|p| p.clients.snow.clone()) else {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: its context is no longer in use"
            )));
        };
        let tx = self.internal.clone();
        // Among the dispatch tasks: a shutdown waits for its answer to be journaled.
        self.dispatching.spawn(async move {
            let mut result = aws::snow::cancel_task(&client, &task).await;
            if let Err(e) = &result
                && !e.certainly_not_applied()
                && let Ok(true) = aws::snow::task_was_canceled(&client, &task).await
            {
                result = Ok(());
            }
            let created = crate::aws::Created {
                id: task.clone(),
                request_id: None,
            };
            let recorded = log.outcome(
                Service::Snow,
                Call::CancelTask,
                &devices,
                result.as_ref().map(|()| &created),
            );
            let message = match result {
                Ok(()) => format!("CancelTask {task}: its queued executions are canceled"),
                Err(e) => format!("CancelTask {task} failed: {e}"),
            };
            if let Err(e) = recorded {
                let _ = tx.send(Internal::Warn(format!(
                    "The journal could not record CancelTask {task}: {e}"
                )));
            }
            let _ = tx.send(Internal::Canceled { task, message });
        });
    }
}
