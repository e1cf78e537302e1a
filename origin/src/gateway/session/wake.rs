//! What woke a session. A session waits on three sources — its mailbox, its socket, its timer —
//! each polled with a waker of its own, which records the source before waking the task. A
//! wake-up then polls only the sources that asked for it (and those that were ready last time,
//! which may have more): a delivery costs one mailbox poll, not also a read attempt on the
//! socket and a look at the timer. The benchmarks' fan-out figures depend on this.
//!
//! Mail goes first (a revocation or a leave applies before the next frame is read), but after a
//! few turns of mail in a row a waiting inbound frame goes first, so a flood of deliveries
//! cannot starve the client's own frames.

use futures::task::AtomicWaker;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// One of a session's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mail = 1,
    Socket = 2,
    Tick = 4,
}

const ALL: u8 = Source::Mail as u8 | Source::Socket as u8 | Source::Tick as u8;
/// Turns of mail in a row after which the socket goes first.
const MAIL_STREAK: u8 = 4;

struct Woken {
    bits: AtomicU8,
    task: AtomicWaker,
}

struct SourceWaker {
    woken: Arc<Woken>,
    bit: u8,
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.bits.fetch_or(self.bit, Ordering::AcqRel);
        self.woken.task.wake();
    }
}

/// A session's sources and their wakers.
pub struct Wakeups {
    woken: Arc<Woken>,
    mail: Waker,
    socket: Waker,
    tick: Waker,
    /// Sources to poll at the next turn: woken ones, and ones that were ready last time.
    due: u8,
    /// Turns in a row that were mail.
    mail_streak: u8,
}

impl Wakeups {
    /// Every source is due at first.
    pub fn new() -> Self {
        let woken = Arc::new(Woken {
            bits: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        let waker = |source: Source| {
            Waker::from(Arc::new(SourceWaker {
                woken: woken.clone(),
                bit: source as u8,
            }))
        };
        Self {
            mail: waker(Source::Mail),
            socket: waker(Source::Socket),
            tick: waker(Source::Tick),
            woken,
            due: ALL,
            mail_streak: 0,
        }
    }

    /// The waker the mailbox calls when mail arrives.
    pub fn mail_waker(&self) -> Waker {
        self.mail.clone()
    }

    /// Polls the due sources in order until one is ready; `poll_source` polls one source with
    /// the context of that source's waker.
    pub fn poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll_source: impl FnMut(Source, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        self.woken.task.register(cx.waker());
        self.due |= self.woken.bits.swap(0, Ordering::AcqRel);
        let order = if self.mail_streak >= MAIL_STREAK {
            [Source::Socket, Source::Mail, Source::Tick]
        } else {
            [Source::Mail, Source::Socket, Source::Tick]
        };
        for source in order {
            let bit = source as u8;
            if self.due & bit == 0 {
                continue;
            }
            self.due &= !bit;
            let waker = match source {
                Source::Mail => &self.mail,
                Source::Socket => &self.socket,
                Source::Tick => &self.tick,
            };
            if let Poll::Ready(r) = poll_source(source, &mut Context::from_waker(waker)) {
                // A ready source may have more: poll it again next turn.
                self.due |= bit;
                self.mail_streak = if source == Source::Mail {
                    self.mail_streak.saturating_add(1)
                } else {
                    0
                };
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;
    use std::task::Waker;

    /// Sources whose readiness the test sets; records what was polled.
    #[derive(Default)]
    struct Fake {
        ready: Vec<Source>,
        polled: Vec<Source>,
        wakers: Vec<(Source, Waker)>,
    }

    impl Fake {
        fn poll(&mut self, source: Source, cx: &mut Context<'_>) -> Poll<Source> {
            self.polled.push(source);
            if let Some(i) = self.ready.iter().position(|s| *s == source) {
                self.ready.remove(i);
                Poll::Ready(source)
            } else {
                self.wakers.push((source, cx.waker().clone()));
                Poll::Pending
            }
        }

        fn wake(&mut self, source: Source) {
            self.ready.push(source);
            if let Some(i) = self.wakers.iter().position(|(s, _)| *s == source) {
                self.wakers.remove(i).1.wake();
            }
        }
    }

    fn turn(w: &mut Wakeups, fake: &mut Fake) -> Option<Source> {
        fake.polled.clear();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        match w.poll(&mut cx, |s, cx| fake.poll(s, cx)) {
            Poll::Ready(s) => Some(s),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_wake_up_polls_only_the_source_that_woke() {
        let mut w = Wakeups::new();
        let mut fake = Fake::default();
        assert_eq!(turn(&mut w, &mut fake), None, "nothing ready at first");
        assert_eq!(
            fake.polled,
            [Source::Mail, Source::Socket, Source::Tick],
            "every source is polled once at the start"
        );
        fake.wake(Source::Mail);
        assert_eq!(turn(&mut w, &mut fake), Some(Source::Mail));
        assert_eq!(
            fake.polled,
            [Source::Mail],
            "mail woke: the socket and timer are not polled"
        );
        // The mailbox had only that: the next turn polls it once more, then waits.
        assert_eq!(turn(&mut w, &mut fake), None);
        assert_eq!(fake.polled, [Source::Mail]);
        assert_eq!(turn(&mut w, &mut fake), None);
        assert!(fake.polled.is_empty(), "nothing woke: nothing is polled");
        fake.wake(Source::Tick);
        assert_eq!(turn(&mut w, &mut fake), Some(Source::Tick));
        assert_eq!(fake.polled, [Source::Tick]);
    }

    #[test]
    fn a_flood_of_mail_cannot_starve_the_socket() {
        let mut w = Wakeups::new();
        let mut fake = Fake::default();
        assert_eq!(turn(&mut w, &mut fake), None);
        fake.wake(Source::Socket);
        let mut order = Vec::new();
        for _ in 0..6 {
            fake.wake(Source::Mail);
            order.push(turn(&mut w, &mut fake).unwrap());
        }
        let socket_at = order.iter().position(|s| *s == Source::Socket);
        assert_eq!(
            socket_at,
            Some(MAIL_STREAK as usize),
            "after {MAIL_STREAK} turns of mail the waiting frame goes first: {order:?}"
        );
    }
}
