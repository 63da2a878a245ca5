//! The dispatcher's schedule: the open-loop requests merged with the session turns that
//! their predecessors' completions release (closed loop inside a session, open loop
//! across sessions).
//!
//! A request without a session, and a session's first turn, are due at their trace time
//! (`arrival_ns / time_scale`), known before the run. A later turn is due only once the
//! previous turn of its session has ended: at that turn's `end_ns` plus its own think
//! time (`think_ns / time_scale`), whatever the previous turn's outcome (the history it
//! sends is the trace's recorded one, so a failed turn does not change it). The request
//! task of the previous turn tells the dispatcher with a [`Release`] (over a channel
//! whose message wakes the dispatcher thread: no polling).
//!
//! So the schedule keeps the first kind in trace order (a queue) and the released turns
//! in a timer heap keyed by due time, and the dispatcher always takes the earlier head.
//! Turns not yet released wait in a table indexed by a slot number fixed before the run
//! (each request knows its successor's slot, [`Prepared::next_turn`]): a release moves
//! nothing and allocates nothing but a heap entry. A trace without sessions has an empty
//! table and heap, and its queue is the prepared vector itself (no copy).
//!
//! Every trace request still ends as exactly one record: a turn whose predecessor was
//! not sent (the run stopped while it waited for a concurrency slot) is written off as
//! `not_sent` with the rest of its session ([`Schedule::release`]), and when dispatching
//! stops, everything left is ([`Schedule::drain`]). A turn never released keeps its
//! trace lower bound (`arrival_ns / time_scale`) as `scheduled_ns`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::run::prepared::{Prepared, Release};

/// The requests left to dispatch (see the module docs).
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Requests due at their trace time, in trace order.
    open: VecDeque<Prepared>,
    /// Later turns, by slot: taken when handed out or written off.
    waiting: Vec<Option<Prepared>>,
    /// Released turns: (due ns, trace id, slot), earliest first.
    released: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Later turns neither handed out nor written off.
    pending: usize,
}

impl Schedule {
    /// The schedule of `requests` (in trace order; later turns carry `think_ns`): links
    /// each session's turns and sets the later ones aside until released.
    pub fn new(mut requests: Vec<Prepared>) -> Schedule {
        let later = link_turns(&mut requests);
        if later == 0 {
            return Schedule {
                open: VecDeque::from(requests),
                waiting: Vec::new(),
                released: BinaryHeap::new(),
                pending: 0,
            };
        }
        let mut open = VecDeque::with_capacity(requests.len() - later);
        let mut waiting = Vec::with_capacity(later);
        for p in requests {
            if p.think_ns.is_some() {
                waiting.push(Some(p));
            } else {
                open.push_back(p);
            }
        }
        Schedule {
            open,
            waiting,
            released: BinaryHeap::new(),
            pending: later,
        }
    }

    /// The trace has later turns, released by completions.
    pub fn has_sessions(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Requests not yet handed out (before the run: all of them).
    pub fn len(&self) -> usize {
        self.open.len() + self.pending
    }

    /// The requests not yet handed out: open-loop ones in trace order, then the turns
    /// waiting for their predecessors.
    pub fn iter(&self) -> impl Iterator<Item = &Prepared> {
        self.open.iter().chain(self.waiting.iter().flatten())
    }

    /// When the next request is due: the earlier of the next open-loop request and the
    /// earliest released turn. `None` when neither is there (turns may still wait for
    /// releases: see [`Schedule::is_done`]).
    pub fn next_due(&self) -> Option<u64> {
        let open = self.open.front().map(|p| p.scheduled_ns);
        let released = self.released.peek().map(|r| r.0.0);
        match (open, released) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the request [`Schedule::next_due`] names (the open-loop one on a tie).
    pub fn pop(&mut self) -> Option<Prepared> {
        let open = self.open.front().map(|p| p.scheduled_ns);
        let released = self.released.peek().map(|r| r.0.0);
        match (open, released) {
            (Some(a), Some(b)) if b < a => self.pop_released(),
            (Some(_), _) => self.open.pop_front(),
            (None, _) => self.pop_released(),
        }
    }

    fn pop_released(&mut self) -> Option<Prepared> {
        let Reverse((_, _, slot)) = self.released.pop()?;
        self.pending -= 1;
        self.waiting[slot as usize].take()
    }

    /// Every request was handed out or written off.
    pub fn is_done(&self) -> bool {
        self.open.is_empty() && self.pending == 0
    }

    /// Applies a release: the turn in `r.slot` becomes due its think time after
    /// `r.ended_ns`; or, its predecessor not sent, it and the rest of its session go to
    /// `not_sent`. A slot released twice or unknown is ignored (cannot happen: each
    /// request task releases its successor once).
    pub fn release(&mut self, r: Release, mut not_sent: impl FnMut(Prepared)) {
        let Some(Some(p)) = self.waiting.get_mut(r.slot as usize) else {
            return;
        };
        // `think_ns` is taken at release: a released turn has none left.
        let Some(think) = p.think_ns else {
            return;
        };
        match r.ended_ns {
            Some(end) => {
                p.think_ns = None;
                p.scheduled_ns = end.saturating_add(think);
                self.released.push(Reverse((p.scheduled_ns, p.id, r.slot)));
            }
            None => {
                let mut slot = Some(r.slot);
                while let Some(p) = slot.and_then(|s| self.waiting.get_mut(s as usize)?.take()) {
                    self.pending -= 1;
                    slot = p.next_turn;
                    not_sent(p);
                }
            }
        }
    }

    /// Dispatching stopped: takes every request left, open-loop ones first.
    pub fn drain(&mut self, mut f: impl FnMut(Prepared)) {
        self.open.drain(..).for_each(&mut f);
        self.released.clear();
        self.waiting.iter_mut().filter_map(Option::take).for_each(f);
        self.pending = 0;
    }
}

/// Sets each request's `next_turn` to the slot of its session's next turn (slots number
/// the later turns, those with `think_ns`, in trace order) and returns how many later
/// turns there are. A later turn without an earlier turn in the run (impossible in a
/// verified trace, whose sessions start at turn 0) is made open-loop.
fn link_turns(requests: &mut [Prepared]) -> usize {
    let mut last: HashMap<u64, usize> = HashMap::new();
    let mut slots = 0;
    for i in 0..requests.len() {
        let Some(session) = requests[i].session_id else {
            continue;
        };
        if requests[i].think_ns.is_some() {
            match last.get(&session) {
                Some(&prev) => {
                    requests[prev].next_turn = Some(slots as u32);
                    slots += 1;
                }
                None => requests[i].think_ns = None,
            }
        }
        last.insert(session, i);
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prepared request: `session` = (id, turn, think) for a session turn.
    fn req(id: u64, scheduled_ns: u64, session: Option<(u64, u32, u64)>) -> Prepared {
        let mut p = Prepared::for_tests(id, scheduled_ns);
        if let Some((s, turn, think)) = session {
            p.session_id = Some(s);
            p.turn = Some(turn);
            p.think_ns = (turn > 0).then_some(think);
        }
        p
    }

    fn ids(v: &[Prepared]) -> Vec<u64> {
        v.iter().map(|p| p.id).collect()
    }

    #[test]
    fn without_sessions_the_queue_is_the_trace() {
        let mut s = Schedule::new((0..4).map(|i| req(i, i * 10, None)).collect());
        assert!(!s.has_sessions());
        assert_eq!(s.len(), 4);
        let mut out = Vec::new();
        while let Some(due) = s.next_due() {
            let p = s.pop().unwrap();
            assert_eq!(p.scheduled_ns, due);
            out.push(p);
        }
        assert_eq!(ids(&out), vec![0, 1, 2, 3]);
        assert!(s.is_done());
    }

    /// Two sessions of three turns and one request without a session, interleaved.
    fn two_sessions() -> Schedule {
        Schedule::new(vec![
            req(0, 0, Some((0, 0, 0))),
            req(1, 5, Some((1, 0, 0))),
            req(2, 7, None),
            req(3, 10, Some((0, 1, 100))),
            req(4, 20, Some((1, 1, 3))),
            req(5, 30, Some((0, 2, 50))),
            req(6, 40, Some((1, 2, 0))),
        ])
    }

    #[test]
    fn later_turns_wait_for_their_release() {
        let mut s = two_sessions();
        assert!(s.has_sessions());
        assert_eq!(s.len(), 7);
        let mut out = Vec::new();
        while s.next_due().is_some() {
            out.push(s.pop().unwrap());
        }
        // Only the open-loop requests; the turns wait, whatever their trace times.
        assert_eq!(ids(&out), vec![0, 1, 2]);
        assert!(!s.is_done());
        assert_eq!(out[0].next_turn, Some(0));
        assert_eq!(out[1].next_turn, Some(1));
        assert_eq!(out[2].next_turn, None);
        // Session 1's first turn ends first (at 400): its turn 1 is due 400 + 3.
        s.release(
            Release {
                slot: 1,
                ended_ns: Some(400),
            },
            |_| panic!("nothing written off"),
        );
        // Session 0's first turn ends at 350: its turn 1 is due 350 + 100, after 403.
        s.release(
            Release {
                slot: 0,
                ended_ns: Some(350),
            },
            |_| panic!("nothing written off"),
        );
        assert_eq!(s.next_due(), Some(403));
        let t = s.pop().unwrap();
        assert_eq!((t.id, t.scheduled_ns, t.think_ns), (4, 403, None));
        assert_eq!(t.next_turn, Some(3));
        let t = s.pop().unwrap();
        assert_eq!((t.id, t.scheduled_ns), (3, 450));
        assert_eq!(t.next_turn, Some(2));
        assert_eq!(s.next_due(), None);
        // Think 0: due when the previous turn ended.
        s.release(
            Release {
                slot: 3,
                ended_ns: Some(900),
            },
            |_| {},
        );
        s.release(
            Release {
                slot: 2,
                ended_ns: Some(800),
            },
            |_| {},
        );
        let (a, b) = (s.pop().unwrap(), s.pop().unwrap());
        assert_eq!(
            (a.id, a.scheduled_ns, b.id, b.scheduled_ns),
            (5, 850, 6, 900)
        );
        assert!(s.is_done());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn released_turns_merge_with_the_open_loop_schedule() {
        let mut s = Schedule::new(vec![
            req(0, 0, Some((0, 0, 0))),
            req(1, 10, Some((0, 1, 5))),
            req(2, 20, None),
            req(3, 30, None),
        ]);
        assert_eq!(s.pop().unwrap().id, 0);
        s.release(
            Release {
                slot: 0,
                ended_ns: Some(20),
            },
            |_| {},
        );
        // Due 25: between the open-loop requests due 20 and 30. A tie goes to the open
        // loop (trace order).
        assert_eq!(s.next_due(), Some(20));
        assert_eq!(s.pop().unwrap().id, 2);
        assert_eq!(s.next_due(), Some(25));
        assert_eq!(s.pop().unwrap().id, 1);
        assert_eq!(s.pop().unwrap().id, 3);
        assert!(s.is_done());
    }

    #[test]
    fn a_turn_not_sent_writes_off_the_rest_of_its_session() {
        let mut s = two_sessions();
        while s.next_due().is_some() {
            s.pop();
        }
        let mut off = Vec::new();
        s.release(
            Release {
                slot: 0,
                ended_ns: None,
            },
            |p| off.push(p),
        );
        assert_eq!(ids(&off), vec![3, 5]);
        // They keep their trace lower bound as scheduled time.
        assert_eq!(off[0].scheduled_ns, 10);
        // A second release of a written-off slot does nothing.
        s.release(
            Release {
                slot: 0,
                ended_ns: Some(1),
            },
            |_| panic!("already written off"),
        );
        assert!(!s.is_done());
        s.release(
            Release {
                slot: 1,
                ended_ns: Some(100),
            },
            |_| panic!("sent"),
        );
        // Released twice: the second is ignored (no second heap entry).
        s.release(
            Release {
                slot: 1,
                ended_ns: Some(200),
            },
            |_| panic!("sent"),
        );
        assert_eq!(s.pop().unwrap().scheduled_ns, 103);
        assert_eq!(s.next_due(), None);
        s.release(
            Release {
                slot: 3,
                ended_ns: None,
            },
            |p| off.push(p),
        );
        assert_eq!(ids(&off), vec![3, 5, 6]);
        assert!(s.is_done());
    }

    #[test]
    fn drain_takes_everything_left_once() {
        let mut s = two_sessions();
        assert_eq!(s.pop().unwrap().id, 0);
        s.release(
            Release {
                slot: 0,
                ended_ns: Some(60),
            },
            |_| {},
        );
        let mut left = Vec::new();
        s.drain(|p| left.push(p));
        // Open-loop first, then the turns (released or not) by slot.
        assert_eq!(ids(&left), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            left[2].scheduled_ns, 160,
            "a released turn keeps its due time"
        );
        assert_eq!(
            left[3].scheduled_ns, 20,
            "an unreleased one its trace lower bound"
        );
        assert!(s.is_done());
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn a_later_turn_without_its_first_in_the_run_is_open_loop() {
        let mut s = Schedule::new(vec![req(0, 0, None), req(1, 9, Some((4, 2, 7)))]);
        assert!(!s.has_sessions());
        assert_eq!(s.pop().unwrap().id, 0);
        let p = s.pop().unwrap();
        assert_eq!((p.id, p.scheduled_ns, p.think_ns), (1, 9, None));
    }
}
