// Turns a Baileys message into the host's message event (sdk.h, "message"), and back for sends.
import { readFile } from 'node:fs/promises';

const MEDIA_KINDS = {
  imageMessage: 'image',
  videoMessage: 'video',
  audioMessage: 'audio',
  documentMessage: 'document',
  stickerMessage: 'sticker',
};

function phoneOf(jid) {
  if (!jid || !jid.endsWith('@s.whatsapp.net')) return null;
  return '+' + jid.split('@')[0].split(':')[0];
}

// WhatsApp wraps some messages (ephemeral, view once, edits with a document inside...).
function unwrap(message) {
  let m = message;
  for (let i = 0; i < 4 && m; i++) {
    const inner = m.ephemeralMessage?.message || m.viewOnceMessage?.message ||
      m.viewOnceMessageV2?.message || m.documentWithCaptionMessage?.message;
    if (!inner) break;
    m = inner;
  }
  return m;
}

export async function toHostMessage(m, { history, offline, phoneForLid, download }) {
  const key = m.key;
  const content = unwrap(m.message);
  // Status updates (stories) are no conversation.
  if (key.remoteJid === 'status@broadcast') return null;
  if (!content || content.protocolMessage || content.reactionMessage || content.senderKeyDistributionMessage && Object.keys(content).length === 1) {
    return null;
  }
  const group = key.remoteJid?.endsWith('@g.us') ? key.remoteJid : null;
  const senderJid = group ? key.participant : key.remoteJid;
  const senderAlt = group ? key.participantAlt : key.remoteJidAlt;
  const ids = [senderJid, senderAlt].filter(Boolean);
  let phone = phoneOf(senderJid) || phoneOf(senderAlt);
  const lid = ids.find((j) => j.endsWith('@lid')) || null;
  if (!phone && lid) phone = phoneOf(await phoneForLid(lid));

  const details = { chat: key.remoteJid };
  if (m.pushName) details.push_name = m.pushName;
  if (group) details.group = group;
  if (lid) details.lid = lid;
  if (history) details.history = true;
  if (offline) details.offline = true;

  let text = content.conversation || content.extendedTextMessage?.text || '';
  const context = content.extendedTextMessage?.contextInfo ||
    Object.values(content).find((v) => v && typeof v === 'object' && v.contextInfo)?.contextInfo;
  if (context?.stanzaId) {
    details.quoted = { external_id: context.stanzaId, text: context.quotedMessage?.conversation || '' };
  }

  const attachments = [];
  const mediaType = Object.keys(MEDIA_KINDS).find((k) => content[k]);
  if (mediaType) {
    const media = content[mediaType];
    details.media = MEDIA_KINDS[mediaType] === 'audio' && media.ptt ? 'voice_note' : MEDIA_KINDS[mediaType];
    text = text || media.caption || '';
    try {
      const bytes = await download(m);
      attachments.push({ data: Buffer.from(bytes).toString('base64'), mime: media.mimetype || 'application/octet-stream',
        name: media.fileName || `${details.media}` });
    } catch (e) {
      // fetch hides the reason (certificate, refused connection...) in `cause`.
      const cause = e.cause ? ` (${e.cause.code || e.cause.message})` : '';
      details.media_error = 'download failed: ' + e.message + cause;
    }
  }
  if (content.locationMessage) {
    const l = content.locationMessage;
    details.location = { latitude: l.degreesLatitude, longitude: l.degreesLongitude, name: l.name || '' };
    text = text || `📍 ${l.degreesLatitude},${l.degreesLongitude}`;
  }
  if (content.contactMessage) {
    details.contact = { name: content.contactMessage.displayName, vcard: content.contactMessage.vcard };
    text = text || content.contactMessage.displayName || '';
  }

  const timestamp = Number(m.messageTimestamp || 0) * 1000 || Date.now();
  return {
    type: 'message',
    direction: key.fromMe ? 'outbound' : 'inbound',
    external_id: key.id,
    ...(key.fromMe ? { to: phoneOf(key.remoteJid) || key.remoteJid } : { from: phone || lid || senderJid }),
    text,
    timestamp,
    link: { phones: phone ? [phone] : [], whatsapp_ids: ids },
    details,
    attachments,
  };
}

// Baileys' message status: 0 error, 1 pending, 2 server ack, 3 delivered, 4 read, 5 played.
export function receiptStatus(status) {
  return { 0: 'failed', 2: 'sent', 3: 'delivered', 4: 'read', 5: 'played' }[status] || null;
}

export async function mediaContent(media, caption) {
  const data = await readFile(media.path);
  const mime = media.mime || 'application/octet-stream';
  if (mime.startsWith('image/')) return { image: data, mimetype: mime, caption };
  if (mime.startsWith('video/')) return { video: data, mimetype: mime, caption };
  if (mime.startsWith('audio/')) return { audio: data, mimetype: mime };
  return { document: data, mimetype: mime, fileName: media.name || 'file', caption };
}
