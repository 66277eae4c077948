// REST helpers for the server extension (docs/lab-api.md): {base_url}medai-lab/api/<endpoint>.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const PLUGIN_ID = 'medai-lab:plugin';
export const CATEGORY = 'MedAI Lab';

const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();

export function apiUrl(endpoint: string, query?: Record<string, string>): string {
  const url = URLExt.join(settings().baseUrl, 'medai-lab/api', endpoint);
  return query ? url + URLExt.objectToQueryString(query) : url;
}

/** One readable line from a failed response: the server's JSON `message`, else the status. */
export async function errorMessage(response: Response): Promise<string> {
  let text = '';
  try {
    text = await response.text();
    const data = JSON.parse(text);
    if (data && typeof data.message === 'string' && data.message) {
      return data.message;
    }
  } catch {
    // not JSON: fall through
  }
  const reason = response.statusText || (text && text.length < 200 ? text : '');
  let where = response.url;
  try {
    where = new URL(response.url).pathname; // without ServerConnection's cache-busting query
  } catch {
    // keep the raw URL
  }
  return `HTTP ${response.status}${reason ? ` ${reason}` : ''} (${where})`;
}

/** Authenticated request to the MedAI Lab API (token / XSRF handled by ServerConnection). */
export async function request(
  endpoint: string,
  init: RequestInit = {},
  query?: Record<string, string>
): Promise<Response> {
  return ServerConnection.makeRequest(apiUrl(endpoint, query), init, settings());
}

/** JSON request; throws an Error with one clear line when the answer is not 2xx. */
export async function requestJSON<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const response = await request(endpoint, init);
  if (!response.ok) {
    throw new Error(await errorMessage(response));
  }
  return (await response.json()) as T;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    return err.message;
  }
  return String(err);
}
