// Stand-ins for the app's own services. Each call is recorded so the tests can see what ran.
export interface User {
  id: string;
  email: string;
  name: string;
}

export const calls: string[] = [];

/** How many images are being processed now, and the most at once. */
export const imageWork = { inFlight: 0, maxInFlight: 0 };

export const db = {
  async getUser(userId: string): Promise<User> {
    calls.push(`db.getUser:${userId}`);
    return { id: userId, email: `user-${userId}@example.com`, name: `User ${userId}` };
  },
  async createProfile(user: User): Promise<{ profileId: string }> {
    calls.push(`db.createProfile:${user.id}`);
    return { profileId: `profile-${user.id}` };
  },
  async salesSince(since: Date): Promise<{ orders: number; revenue: number }> {
    calls.push(`db.salesSince:${since.toISOString()}`);
    return { orders: 42, revenue: 1234.5 };
  },
};

export const email = {
  async send(to: string, subject: string): Promise<{ messageId: string }> {
    calls.push(`email.send:${to}:${subject}`);
    return { messageId: `msg-${calls.length}` };
  },
};

/** An API that fails the first `failures` calls, like a flaky third party. */
export function flakyApi(failures: number) {
  let attempts = 0;
  return async (): Promise<{ ok: true; attempts: number }> => {
    attempts++;
    calls.push(`flakyApi:${attempts}`);
    if (attempts <= failures) throw new Error(`flaky API failed (attempt ${attempts})`);
    return { ok: true, attempts };
  };
}
