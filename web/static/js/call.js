// The media side of one call: a PeerSession per remote participant.
//
// Who offers: on `call.connected` everyone but the terminal offers to every
// participant already there (the specialist joins after the terminal, a mesh
// newcomer after the others); on `participant.joined` the members already in
// the call wait for the newcomer's offer. Towards a recorder we always offer,
// send-only. Signalling events are handled one at a time, in order. What this page
// sends (a document instead of the camera) is told on each peer's status channel.

import { Emitter } from "./emitter.js";
import { PeerSession } from "./peer.js";
import { MSG } from "./signaling.js";

/** The caller of a call: its terminal, or the phone it was handed off to (`call.handoff`). */
export function isCaller(participant) {
  return participant.role === "terminal" || participant.role === "visitor";
}

/** A recorder's peer whose listing names another segment than the one it was made for. */
function newSegment(peer, participant) {
  const had = peer.remote.segment;
  return participant.segment != null && had != null && participant.segment !== had;
}

export class CallMedia extends Emitter {
  #signaling;
  #getLocalStream;
  #role;
  #peers = new Map();
  #queue = Promise.resolve();
  #unsubscribe = [];
  #videoOverride = null;
  #status = {};
  call = null;

  /** getLocalStream: async () => MediaStream | null (awaited before the first peer is made). */
  constructor({ signaling, getLocalStream, role }) {
    super();
    this.#signaling = signaling;
    this.#getLocalStream = getLocalStream;
    this.#role = role;
    const handlers = {
      [MSG.CALL_CONNECTED]: (m) => this.#onConnected(m),
      [MSG.PARTICIPANT_JOINED]: (m) => this.#onJoined(m),
      [MSG.PARTICIPANT_LEFT]: (m) => this.#onLeft(m),
      [MSG.PARTICIPANT_RECONNECTED]: (m) => this.#onReconnected(m),
      [MSG.RTC_DESCRIPTION]: (m) => this.#onDescription(m),
      [MSG.RTC_CANDIDATE]: (m) => this.#onCandidate(m),
      [MSG.CALL_ENDED]: (m) => this.#onEnded(m),
      [MSG.ICE_SERVERS]: (m) => this.peers.forEach((p) => p.useIceServers(m.ice_servers)),
    };
    for (const [type, handler] of Object.entries(handlers)) {
      this.#unsubscribe.push(signaling.on(type, (m) => this.#serially(() => handler(m))));
    }
  }

  get peers() {
    return [...this.#peers.values()];
  }

  /** Send another video track (document camera, screen) to every peer; null restores the camera. */
  async sendVideo(track) {
    this.#videoOverride = track;
    const stream = await this.#getLocalStream();
    const camera = stream?.getVideoTracks()[0] ?? null;
    await Promise.all(this.peers.map((p) => p.replaceVideoTrack(track ?? camera)));
  }

  /** Tell every peer what this page sends, e.g. {document: true}; peers joining later hear it too. */
  setStatus(fields) {
    this.#status = { ...this.#status, ...fields };
    for (const peer of this.peers) peer.sendStatus(this.#status);
  }

  /** Counters of the first peer's inbound video (tests and the "video ok" badge). */
  async inboundVideo() {
    const peer = this.peers.find((p) => p.direction !== "sendonly");
    return peer ? peer.inboundVideo() : { framesDecoded: 0, frameWidth: 0 };
  }

  /** Close every connection (hang up, call ended) but keep listening for the next call. */
  closePeers() {
    for (const peer of this.#peers.values()) peer.close();
    this.#peers.clear();
    this.#videoOverride = null;
    this.#status = {};
    this.emit("peers-closed");
  }

  dispose() {
    this.closePeers();
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
  }

  #serially(task) {
    this.#queue = this.#queue.then(task).catch((err) => console.error("call media", err));
  }

  #isCurrent(message) {
    return this.call !== null && message.call_id === this.call.call_id;
  }

  async #onConnected(message) {
    if (this.call && this.call.call_id !== message.call_id) this.closePeers();
    this.call = message;
    this.emit("connected", message);
    const listed = new Map(message.participants.map((p) => [p.id, p]));
    for (const [id, peer] of [...this.#peers]) {
      if (peer.remote.role !== "recorder") continue;
      if (!listed.has(id) || newSegment(peer, listed.get(id))) {
        // Replaced while the socket was away (its `participant.left` never came), or the
        // same recorder reconnected meanwhile and records a new segment: the link is dead.
        peer.close();
        this.#peers.delete(id);
      } else {
        peer.resendOffer(); // its answer may have been lost with the socket
      }
    }
    for (const participant of message.participants) {
      if (participant.id === message.you || this.#peers.has(participant.id)) continue;
      const initiator = participant.role === "recorder" || !isCaller({ role: this.#role });
      await this.#createPeer(participant, initiator);
    }
  }

  async #onJoined(message) {
    if (!this.#isCurrent(message)) return;
    const participant = message.participant;
    // Told again (a hand-over that found the recorder given already): listed once.
    this.call.participants = this.call.participants.filter((p) => p.id !== participant.id);
    this.call.participants.push(participant);
    const known = this.#peers.get(participant.id);
    if (participant.role === "recorder" && known && newSegment(known, participant)) {
      known.close(); // the recorder reconnected: its new segment needs a new link
      this.#peers.delete(participant.id);
    }
    if (participant.role === "recorder" && !this.#peers.has(participant.id)) {
      await this.#createPeer(participant, true);
    }
    this.emit("participants", this.call.participants);
  }

  #onLeft(message) {
    if (!this.#isCurrent(message)) return;
    const id = typeof message.participant === "string" ? message.participant : message.participant.id;
    this.#peers.get(id)?.close();
    this.#peers.delete(id);
    this.call.participants = this.call.participants.filter((p) => p.id !== id);
    this.emit("remote-left", { id });
    this.emit("participants", this.call.participants);
  }

  #onReconnected(message) {
    if (!this.#isCurrent(message)) return;
    this.#peers.get(message.participant)?.restartIce();
    this.emit("reconnected", message);
  }

  async #onDescription(message) {
    if (!this.#isCurrent(message)) return;
    let peer = this.#peers.get(message.from);
    if (!peer) {
      const known = this.call.participants.find((p) => p.id === message.from);
      peer = await this.#createPeer(known ?? { id: message.from, role: "unknown", name: "" }, false);
    }
    peer.handleDescription(message.description);
  }

  #onCandidate(message) {
    if (!this.#isCurrent(message)) return;
    this.#peers.get(message.from)?.handleCandidate(message.candidate);
  }

  #onEnded(message) {
    if (this.call && message.call_id !== this.call.call_id) return;
    this.closePeers();
    this.call = null;
    this.emit("ended", message);
  }

  async #createPeer(remote, initiator) {
    const localStream = await this.#getLocalStream();
    const recorder = remote.role === "recorder";
    const peer = new PeerSession({
      signaling: this.#signaling,
      callId: this.call.call_id,
      remote,
      initiator,
      iceServers: this.#signaling.welcome?.ice_servers ?? [],
      localStream,
      direction: recorder ? "sendonly" : "sendrecv",
      iceRestart: !recorder,
      statusChannel: isCaller(remote),
    });
    this.#peers.set(remote.id, peer);
    peer.on("track", ({ stream }) => this.emit("remote-track", { participant: remote, stream }));
    peer.on("connectionstate", (state) => this.emit("peer-state", { participant: remote, state }));
    peer.on("failed", (err) => this.#serially(() => this.#replacePeer(peer, err?.description)));
    peer.on("status-open", () => {
      if (Object.keys(this.#status).length) peer.sendStatus(this.#status);
    });
    peer.on("status", (status) => this.emit("remote-status", { participant: remote, status }));
    peer.start();
    if (this.#videoOverride) await peer.replaceVideoTrack(this.#videoOverride);
    return peer;
  }

  /** A negotiation that cannot recover (the remote page was reloaded): start afresh. */
  async #replacePeer(peer, failedDescription) {
    if (this.#peers.get(peer.remote.id) !== peer || !this.call) return;
    peer.close();
    this.#peers.delete(peer.remote.id);
    const fresh = await this.#createPeer(peer.remote, peer.initiator);
    if (failedDescription?.type === "offer" && fresh.polite) fresh.handleDescription(failedDescription);
  }
}
