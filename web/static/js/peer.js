// One RTCPeerConnection to one remote participant, negotiated with the
// "perfect negotiation" pattern (W3C WebRTC 1.0, section 10.7 example).
//
// The initiator is impolite and makes the first offer as soon as its tracks
// are attached; the other side is polite, waits for that offer and attaches its
// own tracks while answering. Either side may renegotiate later (ICE restart,
// new tracks) and glare resolves itself: the polite side rolls back.
// A recorder is just a PeerSession with direction "sendonly".
//
// Between a console and a kiosk the console's first offer also opens a small data
// channel, "vwin-status", on which each side says what it is sending (the kiosk:
// a document instead of its camera). It is part of the first negotiation, so showing
// a document later never renegotiates.

import { Emitter } from "./emitter.js";
import { MSG } from "./signaling.js";

/** A "disconnected" ICE state often heals alone; restart only if it lasts this long. */
const DISCONNECTED_GRACE_MS = 2500;
/**
 * An offer still without its answer after this long is sent again, unchanged, then after
 * each next wait (the last one repeats): a relayed frame can be lost on the way (the
 * sender's request failed while Redis restarted, or the receiving node was subscribing
 * again), and nothing else would ever ask again. The remote answers the same offer with
 * the same answer; a second copy of it finds this side stable and is dropped.
 */
const OFFER_RESEND_MS = [4000, 8000, 16000];
const STATUS_CHANNEL = "vwin-status";
/** A status is a few flags; anything longer is not ours. */
const STATUS_MAX_BYTES = 1024;

export class PeerSession extends Emitter {
  #signaling;
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswer = false;
  #tracksAttached = false;
  #chain = Promise.resolve();
  #disconnectTimer = null;
  #resendTimer = null;
  #closed = false;
  #statusChannel = null;
  #sentOffer = null;
  #sentCandidates = [];

  /**
   * options: signaling (SignalingClient), callId, remote {id, role, name},
   * initiator (bool), iceServers, localStream (may be null), direction
   * ("sendrecv" | "sendonly"), iceRestart (false for peers that cannot do it),
   * statusChannel (the initiator opens "vwin-status" in its first offer).
   */
  constructor({ signaling, callId, remote, initiator, iceServers = [], localStream = null,
    direction = "sendrecv", iceRestart = true, statusChannel = false }) {
    super();
    this.#signaling = signaling;
    this.callId = callId;
    this.remote = remote;
    this.initiator = initiator;
    this.polite = !initiator;
    this.direction = direction;
    this.iceRestart = iceRestart;
    this.localStream = localStream;
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection({ iceServers });
    this.pc.addEventListener("negotiationneeded", () => this.#onNegotiationNeeded());
    this.pc.addEventListener("icecandidate", ({ candidate }) => this.#onIceCandidate(candidate));
    this.pc.addEventListener("track", ({ track }) => this.#onTrack(track));
    this.pc.addEventListener("iceconnectionstatechange", () => this.#onIceState());
    this.pc.addEventListener("connectionstatechange", () => {
      this.emit("connectionstate", this.pc.connectionState);
    });
    this.pc.addEventListener("datachannel", ({ channel }) => {
      if (channel.label === STATUS_CHANNEL) this.#bindStatus(channel);
    });
    if (statusChannel && initiator) this.#bindStatus(this.pc.createDataChannel(STATUS_CHANNEL));
  }

  /** Tell the remote what we send (e.g. {document: true}); false if the channel is not open. */
  sendStatus(status) {
    if (this.#statusChannel?.readyState !== "open") return false;
    this.#statusChannel.send(JSON.stringify(status));
    return true;
  }

  #bindStatus(channel) {
    this.#statusChannel = channel;
    channel.addEventListener("open", () => this.emit("status-open", this));
    channel.addEventListener("message", ({ data }) => {
      if (typeof data !== "string" || data.length > STATUS_MAX_BYTES) return;
      let status;
      try {
        status = JSON.parse(data);
      } catch {
        return;
      }
      if (status && typeof status === "object" && !Array.isArray(status)) this.emit("status", status);
    });
  }

  /** The initiator attaches its tracks now (which triggers the offer); the polite side waits. */
  start() {
    if (this.initiator) this.#attachTracks();
    return this;
  }

  /** Feed a relayed `rtc.description`; calls are serialised so candidates never overtake. */
  handleDescription(description) {
    return this.#enqueue(() => this.#acceptDescription(description).catch((err) => {
      throw Object.assign(err, { description });
    }));
  }

  /** Feed a relayed `rtc.candidate` (null = end of candidates, which Chromium does not need). */
  handleCandidate(candidate) {
    if (!candidate) return Promise.resolve();
    return this.#enqueue(async () => {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        if (!this.#ignoreOffer) console.warn("addIceCandidate failed", err);
      }
    });
  }

  /** Ask for new ICE credentials; negotiationneeded sends the offer. */
  restartIce() {
    if (this.#closed || !this.iceRestart) return;
    console.info(`ICE restart towards ${this.remote.id}`);
    this.pc.restartIce();
  }

  /** Fresh TURN credentials (`ice.servers`): either side's next ICE restart gathers with them. */
  useIceServers(iceServers) {
    if (!this.#closed) this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
  }

  /** Switch what we send on the video sender without renegotiation (null = send nothing). */
  async replaceVideoTrack(track) {
    const transceiver = this.pc.getTransceivers()
      .find((t) => t.receiver.track.kind === "video" && t.currentDirection !== "stopped");
    const sender = transceiver?.sender;
    if (!sender) return false;
    await sender.replaceTrack(track);
    return true;
  }

  /** Inbound video counters, for the "is video flowing" indicator and the tests. */
  async inboundVideo() {
    const stats = await this.pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "inbound-rtp" && report.kind === "video") {
        return { framesDecoded: report.framesDecoded ?? 0, frameWidth: report.frameWidth ?? 0 };
      }
    }
    return { framesDecoded: 0, frameWidth: 0 };
  }

  /**
   * Send the offer still waiting for its answer again, as it was, and its candidates: the
   * answer was lost with the socket (a resume), or on the way (`OFFER_RESEND_MS`). The
   * remote answers the same offer with the same answer (a recorder:
   * `ParticipantRecorder.answer_to`); a new offer instead would be answered anew, and the
   * first answer, relayed late, taken for it. False: none waits.
   */
  resendOffer() {
    if (this.#closed || this.pc.signalingState !== "have-local-offer" || !this.#sentOffer) return false;
    this.#signaling.send(MSG.RTC_DESCRIPTION, {
      call_id: this.callId, to: this.remote.id, description: this.#sentOffer,
    });
    for (const candidate of this.#sentCandidates) {
      this.#signaling.send(MSG.RTC_CANDIDATE, { call_id: this.callId, to: this.remote.id, candidate });
    }
    return true;
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#disconnectTimer);
    clearTimeout(this.#resendTimer);
    this.pc.close();
    this.emit("closed", this);
  }

  get closed() {
    return this.#closed;
  }

  #enqueue(task) {
    const next = this.#chain.then(task).catch((err) => {
      console.error(`negotiation with ${this.remote.id} failed`, err);
      this.emit("failed", err);
    });
    this.#chain = next;
    return next;
  }

  #attachTracks() {
    if (this.#tracksAttached) return;
    this.#tracksAttached = true;
    const stream = this.localStream;
    const tracks = stream ? stream.getTracks() : [];
    if (this.direction === "sendonly") {
      for (const track of tracks) this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      return;
    }
    for (const track of tracks) this.pc.addTrack(track, stream);
    // Without a camera or microphone we still want to receive both kinds.
    for (const kind of ["audio", "video"]) {
      if (!tracks.some((t) => t.kind === kind) && this.initiator) {
        this.pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
  }

  async #onNegotiationNeeded() {
    if (this.#closed) return;
    try {
      this.#makingOffer = true;
      await this.pc.setLocalDescription();
      this.#sendDescription();
    } catch (err) {
      console.error("creating an offer failed", err);
      this.emit("failed", err);
    } finally {
      this.#makingOffer = false;
    }
  }

  async #acceptDescription(description) {
    if (this.#closed) return;
    const pc = this.pc;
    const readyForOffer = !this.#makingOffer &&
      (pc.signalingState === "stable" || this.#settingRemoteAnswer);
    if (description.type === "answer" && pc.signalingState === "stable") {
      return; // a second answer to an offer sent again: the first was taken
    }
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.#ignoreOffer = !this.polite && offerCollision;
    if (this.#ignoreOffer) return;
    this.#settingRemoteAnswer = description.type === "answer";
    try {
      await pc.setRemoteDescription(description);
    } finally {
      this.#settingRemoteAnswer = false;
    }
    if (description.type === "offer") {
      this.#attachTracks();
      await pc.setLocalDescription();
      this.#sendDescription();
    }
  }

  #sendDescription() {
    const { type, sdp } = this.pc.localDescription;
    if (type === "offer") {
      this.#sentOffer = { type, sdp };
      this.#sentCandidates = [];
      this.#resendUnanswered(0);
    }
    this.#signaling.send(MSG.RTC_DESCRIPTION, {
      call_id: this.callId, to: this.remote.id, description: { type, sdp },
    });
  }

  /** Ask again for the answer to the offer just sent if it does not come (`OFFER_RESEND_MS`). */
  #resendUnanswered(attempt) {
    clearTimeout(this.#resendTimer);
    const wait = OFFER_RESEND_MS[Math.min(attempt, OFFER_RESEND_MS.length - 1)];
    this.#resendTimer = setTimeout(() => {
      if (this.resendOffer()) {
        console.info(`no answer from ${this.remote.id}: offer sent again`);
        this.#resendUnanswered(attempt + 1);
      }
    }, wait);
  }

  #onIceCandidate(candidate) {
    if (!candidate || !candidate.candidate) return;
    const sent = candidate.toJSON();
    if (this.pc.signalingState === "have-local-offer") this.#sentCandidates.push(sent);
    this.#signaling.send(MSG.RTC_CANDIDATE, { call_id: this.callId, to: this.remote.id, candidate: sent });
  }

  #onTrack(track) {
    this.remoteStream.addTrack(track);
    track.addEventListener("ended", () => this.remoteStream.removeTrack(track));
    this.emit("track", { track, stream: this.remoteStream, session: this });
  }

  #onIceState() {
    const state = this.pc.iceConnectionState;
    this.emit("icestate", state);
    clearTimeout(this.#disconnectTimer);
    if (state === "failed") {
      this.restartIce();
    } else if (state === "disconnected") {
      this.#disconnectTimer = setTimeout(() => {
        if (this.pc.iceConnectionState === "disconnected") this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    }
  }
}
