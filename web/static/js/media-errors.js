// What to tell a person whose camera or microphone failed, Chinese first: the one
// wording of media.js's MediaError keys, shared by the kiosk and the console.

import { MediaError } from "./media.js";

export const MEDIA_MESSAGES = {
  "zh-CN": {
    "media.title": "无法使用摄像头或麦克风",
    "media.denied": "摄像头或麦克风的使用权限被拒绝。请工作人员在浏览器设置中允许本页面使用摄像头和麦克风。",
    "media.missing": "未检测到摄像头或麦克风。请工作人员检查设备连接。",
    "media.busy": "摄像头或麦克风正被其他程序占用。请关闭其他程序后重试。",
    "media.failed": "摄像头或麦克风无法启动。请联系工作人员。",
    "media.insecure": "本页面未通过安全连接（HTTPS）打开，无法使用摄像头和麦克风。请联系工作人员。",
    "media.noDocumentSource": "没有可用于展示材料的第二摄像头或屏幕共享。",
  },
  en: {
    "media.title": "Camera or microphone unavailable",
    "media.denied": "Permission to use the camera or microphone was denied. Staff: allow camera and microphone for this page in the browser settings.",
    "media.missing": "No camera or microphone was found. Staff: please check that they are connected.",
    "media.busy": "The camera or microphone is in use by another program. Close it and try again.",
    "media.failed": "The camera or microphone could not be started. Please ask staff for help.",
    "media.insecure": "This page was not opened over a secure connection (HTTPS), so the camera and microphone cannot be used. Please ask staff for help.",
    "media.noDocumentSource": "No second camera or screen sharing is available to show documents.",
  },
};

/** The message key for any error a media call threw (unknown errors: "media.failed"). */
export function mediaErrorMessageKey(err) {
  return err instanceof MediaError && err.key in MEDIA_MESSAGES["zh-CN"] ? err.key : "media.failed";
}

/** True when the camera can work at all: a secure context with mediaDevices (HTTPS or localhost). */
export function mediaAvailable() {
  return window.isSecureContext && Boolean(navigator.mediaDevices?.getUserMedia);
}
