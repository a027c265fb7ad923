/** What an embedded server's monitoring endpoint (/varz) says of it: its name, its clients. */


/** What a server's monitoring endpoint says of it (node:http: fetch takes ~20 ms to load). */
export async function serverStatus(monitorUrl: string): Promise<{ connections: number; serverName: string }> {
  const { get } = await import('node:http');
  return new Promise((resolve, reject) => {
    const request = get(`${monitorUrl}/varz`, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          const varz = JSON.parse(body) as { connections?: number; server_name?: string };
          resolve({ connections: varz.connections ?? 0, serverName: varz.server_name ?? '' });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.setTimeout(5_000, () => request.destroy(new Error('monitoring endpoint timed out')));
  });
}

/** Client connections on the server, from its monitoring endpoint. */
export async function connectionsOn(monitorUrl: string): Promise<number> {
  return (await serverStatus(monitorUrl)).connections;
}
