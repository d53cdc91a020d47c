// Shrink and re-encode a photo in the browser before it is uploaded.
//
// Lambda's payload limit is 6 MB and the proxy's is 4.5 MB, base64 included. A 12 MP
// phone photo is 3-8 MB as a file, so it is redrawn on a canvas with its longest side
// at most MAX_SIDE pixels (2048 px keeps hieroglyphs legible; Gemini tiles larger
// images down anyway) and encoded as JPEG. If a very detailed image still exceeds
// MAX_JPEG_BYTES, the quality and then the size step down until it fits. EXIF
// orientation is applied while decoding, so the pixels sent are upright.

export const MAX_SIDE = 2048;
export const JPEG_QUALITY = 0.85;
// 1,000,000 bytes of JPEG is about 1.33 MB once base64-encoded into the JSON body.
export const MAX_JPEG_BYTES = 1_000_000;

// The regular tier's photo travels by presigned upload and is prepared again on the
// server, so it keeps (nearly) its full resolution: a 40 MP camera photo (7296x5472)
// fits whole; the byte budget stays under the API's default 50 MB upload limit.
export const REGULAR_MAX_SIDE = 8192;
export const REGULAR_MAX_BYTES = 40_000_000;

export class ImageError extends Error {}

/** Target size for an image of width x height, longest side <= maxSide. */
export function fitWithin(width, height, maxSide = MAX_SIDE) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

async function decode(file) {
  // createImageBitmap applies EXIF orientation with imageOrientation "from-image".
  if (typeof createImageBitmap === "function") {
    try {
      return await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      // fall through: some browsers reject the options or the format here
    }
  }
  // <img> applies EXIF orientation by default (CSS image-orientation: from-image).
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } catch {
    throw new ImageError(
      "This file can't be opened as an image in this browser. Try a JPEG or PNG (iPhone HEIC photos can be exported as JPEG).",
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

function encode(canvas, quality) {
  return new Promise((resolve, reject) =>
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new ImageError("The image couldn't be re-encoded."))),
      "image/jpeg",
      quality,
    ),
  );
}

function draw(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // transparent PNG areas become white, not black
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, width, height);
  return canvas;
}

/**
 * @param {Blob} file an image the user picked, dropped or pasted
 * @returns {Promise<{blob: Blob, width: number, height: number,
 *                    originalWidth: number, originalHeight: number, originalBytes: number}>}
 */
export async function prepareImage(file, { maxSide = MAX_SIDE, maxBytes = MAX_JPEG_BYTES } = {}) {
  if (file.type && !file.type.startsWith("image/")) {
    throw new ImageError("That file isn't an image. Choose a photo (JPEG, PNG or WebP).");
  }
  const source = await decode(file);
  const originalWidth = source.width || source.naturalWidth;
  const originalHeight = source.height || source.naturalHeight;
  try {
    let side = maxSide;
    for (let attempt = 0; attempt < 8; attempt++) {
      const { width, height } = fitWithin(originalWidth, originalHeight, side);
      const canvas = draw(source, width, height);
      for (const quality of [JPEG_QUALITY, 0.75, 0.65]) {
        const blob = await encode(canvas, quality);
        if (blob.size <= maxBytes) {
          return { blob, width, height, originalWidth, originalHeight, originalBytes: file.size };
        }
      }
      side = Math.round(Math.max(width, height) * 0.8);
    }
    throw new ImageError("This image is too detailed to shrink enough for upload.");
  } finally {
    source.close?.();
  }
}

/** Blob -> "data:image/jpeg;base64,..." */
export function toDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ImageError("The image couldn't be read."));
    reader.readAsDataURL(blob);
  });
}
