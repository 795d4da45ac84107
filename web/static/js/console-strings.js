// Console wording added with the invite/transfer, waiting-calls, enlarge and
// secure-context features, Simplified Chinese first (the fallback), then English.
// The page's <html lang> picks the language.

import { I18n } from "./i18n.js";
import { MEDIA_MESSAGES } from "./media-errors.js";

const zh = {
  "call.document": "访客正在展示材料",
  "call.enlarge": "放大画面",
  "call.shrink": "还原画面",
  "invite.title": "邀请或转接",
  "invite.target": "邀请对象",
  "invite.byQueue": "部门队列",
  "invite.byName": "指定专员（用户名）",
  "invite.send": "邀请加入",
  "transfer.send": "转接",
  "invite.pickQueue": "请选择队列",
  "invite.pickName": "请输入专员的用户名",
  "invite.ringing": "正在邀请{target}…",
  "invite.accepted": "{target}已加入通话",
  "invite.declined": "{target}拒绝了邀请",
  "invite.cancelled": "邀请已取消",
  "invite.other": "邀请结束（{state}）",
  "transfer.ringing": "正在转接给{target}…",
  "transfer.accepted": "{target}已接手，您将离开通话",
  "invite.refused": "未能邀请：{reason}",
  "invite.notConnected": "未连接，请稍后重试",
  "invite.queueTarget": "「{name}」队列",
  "offer.invited": "同事邀请您加入一个进行中的通话",
  "offer.transfer": "同事将一位来电转接给您",
  "waiting.none": "您的队列暂无来电等待",
  "waiting.some": "您的队列有 {n} 位来电等待，最长已等 {wait}",
  "wait.seconds": "{n} 秒",
  "wait.minutes": "{n} 分钟",
  "refused.call_full": "一个会话最多四方参加",
  "refused.invite_pending": "上一个邀请仍在响铃",
  "refused.already_in_call": "该专员已在本通话中",
  "refused.specialist_unavailable": "该专员未登录或正忙",
  "refused.no_specialist": "该队列暂无专员在线",
  "refused.closed": "该队列当前不在服务时间",
  "refused.not_in_call": "您已不在该通话中",
};

const en = {
  "call.document": "The visitor is showing a document",
  "call.enlarge": "Enlarge video",
  "call.shrink": "Restore video",
  "invite.title": "Invite or transfer",
  "invite.target": "Whom to invite",
  "invite.byQueue": "A department's queue",
  "invite.byName": "A named specialist (username)",
  "invite.send": "Invite",
  "transfer.send": "Transfer",
  "invite.pickQueue": "Choose a queue",
  "invite.pickName": "Enter the specialist's username",
  "invite.ringing": "Inviting {target}…",
  "invite.accepted": "{target} joined the call",
  "invite.declined": "{target} declined",
  "invite.cancelled": "The invitation was cancelled",
  "invite.other": "The invitation ended ({state})",
  "transfer.ringing": "Transferring to {target}…",
  "transfer.accepted": "{target} took over; you are leaving the call",
  "invite.refused": "Could not invite: {reason}",
  "invite.notConnected": "Not connected; try again in a moment",
  "invite.queueTarget": "the {name} queue",
  "offer.invited": "A colleague invites you into a call in progress",
  "offer.transfer": "A colleague transfers a caller to you",
  "waiting.none": "No calls waiting in your queues",
  "waiting.some": "{n} calls waiting in your queues, longest {wait}",
  "wait.seconds": "{n} s",
  "wait.minutes": "{n} min",
  "refused.call_full": "a session holds at most four parties",
  "refused.invite_pending": "the last invitation is still ringing",
  "refused.already_in_call": "that specialist is already in this call",
  "refused.specialist_unavailable": "that specialist is not logged in or is busy",
  "refused.no_specialist": "no specialist of that queue is online",
  "refused.closed": "that queue is closed now",
  "refused.not_in_call": "you are no longer in this call",
};

export const CONSOLE_STRINGS = {
  "zh-CN": { ...zh, ...MEDIA_MESSAGES["zh-CN"] },
  en: { ...en, ...MEDIA_MESSAGES.en },
};

/** The console's dictionary in the page's language (Chinese unless the page says English). */
export function consoleI18n() {
  return new I18n(CONSOLE_STRINGS, document.documentElement.lang === "en" ? "en" : "zh-CN");
}
