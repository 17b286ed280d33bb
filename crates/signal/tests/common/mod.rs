//! A small world of devices on a `MemoryHub`, driven faster than real time.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tincan_signal::call::{CallEvent, CallMachine, CallMachineConfig};
use tincan_signal::protocol::{CallId, DeviceId, EndReason, Endpoint, UserId};
use tincan_signal::transport::{MemoryHub, MemoryTransport, flush, receive_all};

pub fn endpoint(name: &str) -> Endpoint {
    let (user, device) = name.split_once('/').unwrap_or((name, "1"));
    Endpoint::new(UserId::new(user).unwrap(), DeviceId::new(device).unwrap())
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

pub struct Device {
    pub machine: CallMachine,
    pub link: Option<MemoryTransport>,
    pub events: Vec<CallEvent>,
    pub timer: Option<Instant>,
}

pub struct World {
    pub hub: MemoryHub,
    pub devices: BTreeMap<String, Device>,
    pub now: Instant,
}

impl World {
    /// Devices named "user/device" (or "user" for device "1").
    pub fn new(names: &[&str]) -> Self {
        let hub = MemoryHub::new();
        let mut devices = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let endpoint = endpoint(name);
            let link = hub.connect(endpoint.clone());
            let machine = CallMachine::new(CallMachineConfig::new(endpoint, i as u64 + 1)).unwrap();
            devices.insert(
                name.to_string(),
                Device {
                    machine,
                    link: Some(link),
                    events: Vec::new(),
                    timer: None,
                },
            );
        }
        Self {
            hub,
            devices,
            now: Instant::now(),
        }
    }

    pub fn device(&mut self, name: &str) -> &mut Device {
        self.devices.get_mut(name).expect("known device")
    }

    pub fn machine(&mut self, name: &str) -> &mut CallMachine {
        &mut self.device(name).machine
    }

    /// Runs a user action at the current time, then lets messages settle.
    pub fn act<T>(&mut self, name: &str, action: impl FnOnce(&mut CallMachine, Instant) -> T) -> T {
        let now = self.now;
        let result = action(self.machine(name), now);
        self.settle();
        result
    }

    /// Delivers messages until nobody has anything left to send.
    pub fn settle(&mut self) {
        let now = self.now;
        loop {
            let mut moved = 0;
            for device in self.devices.values_mut() {
                if let Some(link) = device.link.as_mut() {
                    device.timer = flush(&mut device.machine, link, &mut device.events).unwrap();
                } else {
                    // A disconnected device still runs; what it sends goes nowhere.
                    loop {
                        match device.machine.poll_output() {
                            tincan_signal::Output::Event(e) => device.events.push(e),
                            tincan_signal::Output::Send(_) => {}
                            tincan_signal::Output::Timeout(at) => {
                                device.timer = Some(at);
                                break;
                            }
                            tincan_signal::Output::Idle => {
                                device.timer = None;
                                break;
                            }
                        }
                    }
                }
            }
            for device in self.devices.values_mut() {
                if let Some(link) = device.link.as_mut() {
                    moved += receive_all(&mut device.machine, link, now).unwrap();
                }
            }
            if moved == 0 {
                return;
            }
        }
    }

    /// Advances time by `by`, firing every timer on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            self.settle();
            let next = self
                .devices
                .values()
                .filter_map(|d| d.timer)
                .filter(|t| *t <= end)
                .min();
            let Some(next) = next else {
                self.now = end;
                self.settle();
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            for device in self.devices.values_mut() {
                if device.timer.is_some_and(|t| t <= now) {
                    device.machine.handle_timeout(now);
                }
            }
        }
    }

    /// The calls that ended on a device, with their reasons and durations.
    pub fn ends(&self, name: &str) -> Vec<(CallId, EndReason, Duration)> {
        self.devices[name]
            .events
            .iter()
            .filter_map(|e| match e {
                CallEvent::CallEnds {
                    call_id,
                    reason,
                    duration,
                } => Some((call_id.clone(), *reason, *duration)),
                _ => None,
            })
            .collect()
    }

    pub fn end_reasons(&self, name: &str) -> Vec<EndReason> {
        self.ends(name).into_iter().map(|(_, r, _)| r).collect()
    }

    pub fn events(&self, name: &str) -> &[CallEvent] {
        &self.devices[name].events
    }

    pub fn has_event(&self, name: &str, test: impl Fn(&CallEvent) -> bool) -> bool {
        self.devices[name].events.iter().any(test)
    }
}
