//! The engine's `CallHandler`: inbound SIP calls are routed to the agent whose
//! `phone_number` was dialled; outbound progress is written to the call record. Running the
//! call itself is the session's job, passed in as `RunCall` (`agent::session::run_call`).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::service::{CallHandler, OutboundStatus, Routing};
use crate::agent::admission::{Admission, Refusal};
use crate::agent::session::CallRoute;
use crate::store::{CallOutcome, Scope, Store};
use crate::telephony::dialer::OutboundCall;
use crate::telephony::leg::{CallLeg, LegInfo};

/// Starts the session of one call (spawns it; must not block).
pub type RunCall = Arc<dyn Fn(CallLeg, CallRoute) + Send + Sync>;

pub struct StoreRouting {
    pub store: Store,
    pub admission: Arc<Admission>,
    pub run: RunCall,
}

impl CallHandler for StoreRouting {
    fn route(&self, info: LegInfo) -> BoxFuture<'static, Routing> {
        let (store, run) = (self.store.clone(), self.run.clone());
        let admission = self.admission.clone();
        Box::pin(async move {
            match store.find_agent_by_phone(&info.to, true).await {
                Ok(Some(agent)) if agent.status == "active" => {
                    let scope = Scope {
                        workspace_id: agent.workspace_id.clone(),
                        live: agent.live,
                    };
                    let permit = match admission.admit(&store, &scope, None).await {
                        Ok(permit) => permit,
                        Err(refusal) => {
                            tracing::warn!(to = %info.to, "SIP call refused: {refusal}");
                            return refused(&refusal);
                        }
                    };
                    let mut route = CallRoute::new(agent.id, scope);
                    route.permit = Some(Arc::new(permit));
                    Routing::Answer(Box::new(move |leg| run(leg, route)))
                }
                Ok(Some(_)) => Routing::Reject {
                    code: 480,
                    reason: "Temporarily Unavailable",
                },
                Ok(None) => Routing::Reject {
                    code: 404,
                    reason: "Not Found",
                },
                Err(err) => {
                    tracing::error!("cannot route SIP call to {}: {err}", info.to);
                    Routing::Reject {
                        code: 500,
                        reason: "Server Internal Error",
                    }
                }
            }
        })
    }

    fn outbound_status(&self, call: &OutboundCall, status: OutboundStatus) {
        let store = self.store.clone();
        let call_id = call.call_id.clone();
        tokio::spawn(async move {
            let result = match status {
                // The API created the call `ringing`; a 180 confirms it.
                OutboundStatus::Ringing => store.set_call_status(&call_id, "ringing").await,
                OutboundStatus::Failed { status, sip_code } => {
                    let outcome = CallOutcome::unanswered(status, format!("SIP {sip_code}"));
                    store.finish_call(&call_id, outcome).await.map(|_| ())
                }
            };
            if let Err(err) = result {
                tracing::error!(call_id, "cannot record outbound progress: {err}");
            }
        });
    }

    fn outbound_answered(&self, call: OutboundCall, leg: CallLeg) {
        let mut route = CallRoute::new(
            call.agent_id,
            Scope {
                workspace_id: call.workspace_id,
                live: call.live,
            },
        );
        route.call_id = Some(call.call_id);
        route.context = call.context;
        route.permit = call.permit;
        route.machine_detection = call.machine_detection;
        (self.run)(leg, route);
    }
}

/// The SIP answer to a call admission turned away: busy while a cap is reached, forbidden once
/// the plan's minutes are used up.
fn refused(refusal: &Refusal) -> Routing {
    match refusal {
        Refusal::EngineFull(_) | Refusal::WorkspaceFull(_) => Routing::Reject {
            code: 486,
            reason: "Busy Here",
        },
        Refusal::MinutesExhausted { .. } => Routing::Reject {
            code: 403,
            reason: "Call Minutes Exhausted",
        },
        Refusal::Store(_) => Routing::Reject {
            code: 500,
            reason: "Server Internal Error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AgentPatch, NewAgent, NewCall};
    use crate::telephony::leg::{Direction, leg_pair};
    use std::sync::Mutex;

    fn info(to: &str) -> LegInfo {
        LegInfo {
            transport: "sip",
            carrier_call_id: "c1".into(),
            from: "+15550001".into(),
            to: to.into(),
            direction: Direction::Inbound,
            parameters: Vec::new(),
            carrier_detects_machine: false,
            dtmf_out_of_band: false,
            continuous_audio: false,
        }
    }

    #[tokio::test]
    async fn routes_by_number_and_records_outbound_failures() {
        let dir = std::env::temp_dir().join(format!("boltcall-route-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .unwrap();
        let scope = Scope {
            workspace_id: "ws_1".into(),
            live: true,
        };
        let new_agent = |phone: &str| NewAgent {
            name: "Front desk".into(),
            voice_id: "voice_sarah".into(),
            greeting: None,
            prompt: None,
            knowledge_base_id: None,
            phone_number: Some(phone.into()),
            transfer_targets: Vec::new(),
            llm: Default::default(),
            tools: Vec::new(),
        };
        let agent = store
            .create_agent(&scope, new_agent("+15550100"))
            .await
            .unwrap();
        let paused = store
            .create_agent(&scope, new_agent("+15550480"))
            .await
            .unwrap();
        let patch = AgentPatch {
            status: Some("paused".into()),
            ..AgentPatch::default()
        };
        store.update_agent(&scope, &paused.id, patch).await.unwrap();

        let started: Arc<Mutex<Vec<CallRoute>>> = Arc::default();
        let seen = started.clone();
        let routing = StoreRouting {
            store: store.clone(),
            admission: Admission::new(10, 10),
            run: Arc::new(move |_leg, route| seen.lock().unwrap().push(route)),
        };
        match routing.route(info("+15550100")).await {
            Routing::Answer(start) => start(leg_pair(info("+15550100")).0),
            Routing::Reject { code, .. } => panic!("refused with {code}"),
        }
        assert_eq!(started.lock().unwrap()[0].agent_id, agent.id);
        for (number, expected) in [("+15550480", 480), ("+15559999", 404)] {
            match routing.route(info(number)).await {
                Routing::Reject { code, .. } => assert_eq!(code, expected),
                Routing::Answer(_) => panic!("{number} answered"),
            }
        }

        let new_call = NewCall {
            agent_id: agent.id.clone(),
            direction: "outbound".into(),
            caller: "+15550100".into(),
            to: "+15550999".into(),
            carrier_call_id: None,
            status: "ringing".into(),
            context: None,
        };
        let call = store.create_call(&scope, new_call).await.unwrap();
        let outbound = OutboundCall {
            call_id: call.id.clone(),
            workspace_id: "ws_1".into(),
            live: true,
            agent_id: agent.id.clone(),
            from: "+15550100".into(),
            to: "+15550999".into(),
            context: None,
            permit: None,
            machine_detection: Default::default(),
        };
        routing.outbound_status(
            &outbound,
            OutboundStatus::Failed {
                status: "busy",
                sip_code: 486,
            },
        );
        let mut status = String::new();
        for _ in 0..100 {
            status = store
                .get_call_by_id(&call.id)
                .await
                .unwrap()
                .unwrap()
                .status;
            if status == "busy" {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(status, "busy");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn test_agents_get_no_live_calls_and_admission_caps_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let agent = |phone: &str| NewAgent {
            name: "Desk".into(),
            voice_id: "voice_sarah".into(),
            greeting: None,
            prompt: None,
            knowledge_base_id: None,
            phone_number: Some(phone.into()),
            transfer_targets: Vec::new(),
            llm: Default::default(),
            tools: Vec::new(),
        };
        let test_scope = Scope {
            workspace_id: "ws_t".into(),
            live: false,
        };
        let live_scope = Scope {
            workspace_id: "ws_t".into(),
            live: true,
        };
        store
            .create_agent(&test_scope, agent("+15550777"))
            .await
            .unwrap();
        store
            .create_agent(&live_scope, agent("+15550778"))
            .await
            .unwrap();
        let held: Arc<Mutex<Vec<CallRoute>>> = Arc::default();
        let seen = held.clone();
        let routing = StoreRouting {
            store: store.clone(),
            admission: Admission::new(1, 1),
            run: Arc::new(move |_leg, route| seen.lock().unwrap().push(route)),
        };
        let code = |routing: Routing| match routing {
            Routing::Reject { code, .. } => code,
            Routing::Answer(start) => {
                start(leg_pair(info("+15550778")).0);
                200
            }
        };
        assert_eq!(code(routing.route(info("+15550777")).await), 404);
        assert_eq!(code(routing.route(info("+15550778")).await), 200);
        assert_eq!(code(routing.route(info("+15550778")).await), 486);
        held.lock().unwrap().clear();
        assert_eq!(code(routing.route(info("+15550778")).await), 200);
    }
}
