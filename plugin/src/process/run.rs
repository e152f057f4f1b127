//! The context of one `execute` run: the host, the parameters, the TAE session, the contracts
//! it holds (the claim), the stop flag, the notices for the end user, the recipients registered
//! so far and the record writes waiting for the batch's next group commit. Lives on the calling
//! thread; every per-contract future borrows it.

use super::claims::Claim;
use super::ContractError;
use crate::config::Params;
use crate::hostcalls::{CurrentUser, HostApi};
use crate::records::Record;
use crate::session::Session;
use crate::tae::{ErrorKind, SearchRecord, TaeError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// One recipient's lookup/registration, shared by every contract of the batch.
/// One recipient's registration, shared by every contract of the batch: in flight (a cell the
/// siblings wait on), then its result alone (one entry per distinct e-mail stays for the whole
/// batch, most of them `Ok`: the error is boxed).
enum Registration {
    InFlight(Rc<tokio::sync::OnceCell<RegistrationResult>>),
    Done(RegistrationResult),
}

type RegistrationResult = Result<bool, Box<TaeError>>;

pub struct Run<'h> {
    pub host: HostApi<'h>,
    pub params: Params,
    pub tae: Session<'h>,
    pub user: CurrentUser,
    /// The contracts this run holds (in this process and, when the host offers leases, in the
    /// host's database).
    pub claim: RefCell<Claim>,
    /// Set when the run must stop starting contracts (TAE unreachable, leases lost).
    stop: RefCell<Option<String>>,
    /// Messages for the end user about things done on the way (a registration).
    pub notices: RefCell<Vec<String>>,
    registrations: RefCell<HashMap<String, Registration>>,
    /// Record writes waiting for the batch's next group commit ([`Run::put`]).
    put_queue: PutQueue,
    /// Contracts whose last TAE call timed out (the circuit breaker).
    timeouts: RefCell<std::collections::HashSet<String>>,
    /// The TAE user's own documents, listed once per run when a record left mid-send needs
    /// them (every such upload happened before this run took its contracts).
    own_documents: tokio::sync::OnceCell<Rc<Vec<SearchRecord>>>,
}

/// Distinct contracts with a timeout that stop the run.
pub const TIMEOUTS_TO_STOP: usize = 3;

impl<'h> Run<'h> {
    pub fn new(
        host: HostApi<'h>,
        params: Params,
        tae: Session<'h>,
        user: CurrentUser,
        claim: Claim,
    ) -> Run<'h> {
        Run {
            host,
            params,
            tae,
            user,
            claim: RefCell::new(claim),
            stop: RefCell::new(None),
            notices: RefCell::new(Vec::new()),
            registrations: RefCell::new(HashMap::new()),
            put_queue: PutQueue::default(),
            timeouts: RefCell::new(Default::default()),
            own_documents: tokio::sync::OnceCell::new(),
        }
    }

    /// Why the run stops starting contracts, if it does: its own reason (timeouts, leases
    /// lost, ...), the session's (authentication lost, permission refused), or TAE clearly
    /// unreachable (the circuit breaker).
    pub fn stop_reason(&self) -> Option<String> {
        self.stop
            .borrow()
            .clone()
            .or_else(|| self.tae.lost())
            .or_else(|| self.unreachable_reason())
    }

    /// The breaker's reason when a TAE call ended on a refused connection or a protocol
    /// mismatch (the client then stops every retry and wait of the run).
    fn unreachable_reason(&self) -> Option<String> {
        let url = &self.params.api_url;
        match self.tae.client.unreachable()? {
            ErrorKind::ConnectionRefused => Some(format!(
                "o TOTVS Assinatura Eletrônica está inacessível — a conexão com {url} foi recusada (nada responde nesse endereço: confira a URL da API nos Parâmetros Globais e se o serviço está no ar); os contratos restantes não foram iniciados. Execute novamente quando o serviço voltar"
            )),
            _ => Some(format!(
                "o endereço {url} não fala o protocolo esperado (https:// para um servidor http://, ou o contrário): confira a URL nos Parâmetros Globais; os contratos restantes não foram iniciados"
            )),
        }
    }

    /// Counts a finished contract for the circuit breaker: timeouts in [`TIMEOUTS_TO_STOP`]
    /// distinct contracts with no contract answered by TAE in between stop the run (and every
    /// retry and wait of its TAE client). A contract TAE answered clears the count: sporadic
    /// timeouts in a long batch on a working TAE never stop it; an outage (nothing answered)
    /// stops it within seconds.
    pub(super) fn observe(&self, outcome: &super::Outcome) {
        use super::OutcomeKind as K;
        if outcome.unreachable != Some(super::outcome::Unreachable::Timeout) {
            let answered = !matches!(
                outcome.outcome,
                K::Failed | K::NotProcessed | K::Held | K::Skipped
            );
            if answered {
                self.timeouts.borrow_mut().clear();
            }
            return;
        }
        let n = {
            let mut t = self.timeouts.borrow_mut();
            t.insert(outcome.contract_key.clone());
            t.len()
        };
        if n >= TIMEOUTS_TO_STOP {
            self.stop(format!(
                "o TOTVS Assinatura Eletrônica não respondeu dentro do tempo limite em {n} contratos; os contratos restantes não foram iniciados. Execute novamente mais tarde"
            ));
            self.tae.client.halt();
        }
    }

    /// Whether this run may still change TAE for the item's contract: called before each remote
    /// call that changes TAE (upload, publish, cancel, recipients). With host leases, a run that
    /// was frozen or slowed past its lease time learns here that another run took the contract
    /// over — before it acts, not after (its record writes are refused by the host anyway).
    pub fn still_holds(&self, item: &super::Item) -> Result<(), ContractError> {
        let Some(id) = item.claim_id() else {
            return Ok(());
        };
        if self.claim.borrow_mut().still_holds(self.host.host, &id) {
            return Ok(());
        }
        Err(ContractError::new(
            "outra execução assumiu este contrato (a reserva desta execução expirou); esta execução não o alterou mais",
        ))
    }

    /// Stops starting contracts (the first reason wins).
    pub fn stop(&self, reason: String) {
        let mut s = self.stop.borrow_mut();
        if s.is_none() {
            *s = Some(reason);
        }
    }

    /// Writes records through the host now (with the run's lease token when it has one).
    fn put_now(&self, records: &[&Record]) -> Result<(), ContractError> {
        let token = self.claim.borrow().lease_token().map(str::to_string);
        self.host
            .records_put(records, token.as_deref())
            .map_err(|e| {
                log::error!("records.put failed: {}", e.detail);
                if e.detail.contains("lease_lost") {
                    // The host refused the write: another run took over these contracts after
                    // this run's leases expired. This run must not touch them any more.
                    let reason = "a reserva dos contratos desta execução expirou e outra execução os assumiu; o registro não foi gravado".to_string();
                    self.stop(reason.clone());
                    return ContractError::new(reason);
                }
                ContractError::new(format!(
                    "não foi possível gravar o registro de integração no RM ({})",
                    e.message
                ))
            })
    }

    /// Writes records through the host (in the batch's next group commit when a batch is
    /// running); answers once they are durable.
    pub async fn put(&self, records: &[&Record]) -> Result<(), ContractError> {
        let queue = &self.put_queue;
        if !queue.active.get() {
            return self.put_now(records);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue
            .pending
            .borrow_mut()
            .push((records.iter().map(|r| (*r).clone()).collect(), reply));
        answer.await.unwrap_or_else(|_| {
            Err(ContractError::new(
                "não foi possível gravar o registro de integração no RM (gravação interrompida)",
            ))
        })
    }

    /// Group commits on while a batch drives the contracts.
    pub(super) fn batching(&self, on: bool) {
        self.put_queue.active.set(on);
    }

    pub(super) fn writes_waiting(&self) -> bool {
        !self.put_queue.pending.borrow().is_empty()
    }

    /// Writes every queued record in one host call. If that fails, each contract's records
    /// are written on their own, so one bad record fails only its own contract.
    pub(super) fn flush_writes(&self) {
        let pending = std::mem::take(&mut *self.put_queue.pending.borrow_mut());
        if pending.is_empty() {
            return;
        }
        if pending.len() > 1 {
            let all: Vec<&Record> = pending.iter().flat_map(|(recs, _)| recs.iter()).collect();
            if self.put_now(&all).is_ok() {
                for (_, reply) in pending {
                    let _ = reply.send(Ok(()));
                }
                return;
            }
        }
        for (recs, reply) in pending {
            let refs: Vec<&Record> = recs.iter().collect();
            let _ = reply.send(self.put_now(&refs));
        }
    }

    /// The documents the session's TAE user created (D4 with the sender filter), listed once
    /// per run (a failed listing is not kept).
    pub async fn own_documents(&self, me: &str) -> Result<Rc<Vec<SearchRecord>>, TaeError> {
        let tae = &self.tae;
        // A failed listing is not kept: the next contract tries again.
        self.own_documents
            .get_or_try_init(|| async {
                tae.call(|t| async move { tae.client.own_documents(&t, me).await })
                    .await
                    .map(Rc::new)
            })
            .await
            .cloned()
    }

    /// Makes sure a recipient exists in TAE, once per e-mail per batch even when siblings run
    /// concurrently: one registration (A3), where "already registered" (the user exists,
    /// confirmed or not, under any case of the e-mail) counts as present — no lookup first,
    /// which saves a request per distinct recipient (`docs/PERFORMANCE.md`). Answers whether
    /// a registration happened.
    pub async fn ensure_recipient(
        &self,
        email: &str,
        name: &str,
        cpf: &str,
    ) -> Result<bool, TaeError> {
        let key = email.trim().to_lowercase();
        let cell = {
            let mut map = self.registrations.borrow_mut();
            match map.get(&key) {
                Some(Registration::Done(r)) => return r.clone().map_err(|e| *e),
                Some(Registration::InFlight(cell)) => cell.clone(),
                None => {
                    let cell = Rc::new(tokio::sync::OnceCell::new());
                    map.insert(key.clone(), Registration::InFlight(cell.clone()));
                    cell
                }
            }
        };
        let tae = &self.tae;
        let result = cell
            .get_or_init(|| async {
                tae.call(|t| async move { tae.client.register_user(&t, email, name, cpf).await })
                    .await
                    .map_err(Box::new)
            })
            .await
            .clone();
        // Kept compact for the rest of the batch (the cell and its waiters are done with).
        if let Some(entry) = self.registrations.borrow_mut().get_mut(&key) {
            if matches!(entry, Registration::InFlight(_)) {
                *entry = Registration::Done(result.clone());
            }
        }
        result.map_err(|e| *e)
    }

    /// Whether another contract of this batch has started registering this e-mail and not
    /// finished: a sibling then uploads its PDF meanwhile and waits for the registration only
    /// before its publish, instead of holding its place in the batch idle.
    pub fn registration_in_flight(&self, email: &str) -> bool {
        matches!(
            self.registrations.borrow().get(&email.trim().to_lowercase()),
            Some(Registration::InFlight(c)) if !c.initialized()
        )
    }
}

type PutReply = tokio::sync::oneshot::Sender<Result<(), ContractError>>;

/// Record writes of the contracts in flight, waiting for the batch's next group commit: when
/// every contract in flight is waiting (on TAE or on its write), the batch writes all the
/// queued records in one `records.put` (one host transaction) and then lets each contract go
/// on. A write still completes before the contract's next remote call, as with one write each.
#[derive(Default)]
struct PutQueue {
    /// Set while the batch drives the contracts (else `put` writes at once).
    active: Cell<bool>,
    pending: RefCell<Vec<(Vec<Record>, PutReply)>>,
}
