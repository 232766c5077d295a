/**
 * What every panel of the page (src/main.ts, src/notes.ts) does alike: find its elements, show an
 * error with its code for the e2e suite to read, and run a button's action.
 */
import { AnysyncError } from "tauri-plugin-anysync-api";

/** The element `#id`, failing loudly when index.html lacks it or it is another kind of element. */
export function byId<T extends HTMLElement>(id: string, type: abstract new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing from index.html or is not a ${type.name}`);
  return element;
}

/** The error's code (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, ...) and message, whatever was thrown. */
function describe(error: unknown): { code: string; message: string } {
  if (error instanceof AnysyncError) return { code: error.code, message: error.message };
  return { code: "UNKNOWN", message: error instanceof Error ? error.message : String(error) };
}

/** Shows `error` in `element`: `CODE: message` as text, the code in `data-code`. */
export function showError(element: HTMLElement, error: unknown): void {
  const { code, message } = describe(error);
  element.dataset.code = code;
  element.textContent = `${code}: ${message}`;
  element.hidden = false;
}

/** Hides `element`'s error, leaving an empty `data-code`. */
export function clearError(element: HTMLElement): void {
  element.dataset.code = "";
  element.textContent = "";
  element.hidden = true;
}

/** Runs an action with its button disabled, reporting any failure in `errorElement`. */
export async function act(button: HTMLButtonElement, errorElement: HTMLElement, action: () => Promise<void>): Promise<void> {
  button.disabled = true;
  clearError(errorElement);
  try {
    await action();
  } catch (error) {
    showError(errorElement, error);
  } finally {
    button.disabled = false;
  }
}
