// The original's schedule endpoints, on the atomic ScheduleFile. The answer
// of Schedule.List keeps the original's strings (`"Timer": "60"`,
// `"Active": "True"`), which its CLI compares as text.
import { SCHEDULE_PAUSED_MESSAGE, ScheduleError } from '../../scheduler/schedule-file.js';
import type { Endpoint } from '../endpoint.js';
import { requiredString, stringOrInteger } from '../fields.js';

export const scheduleEndpoints: readonly Endpoint[] = [
  {
    // Timer: minutes, or 0/delete, pause, resume (a number or a string).
    path: '/VolumeDriver.Schedule',
    methods: ['POST'],
    fields: ['Name', 'Action', 'Timer'],
    async handle({ body }, { schedule }) {
      const name = requiredString(body, 'Name');
      const action = requiredString(body, 'Action');
      const timer = stringOrInteger(body, 'Timer');
      await schedule.update({ name, action, timer });
      return {};
    },
  },
  {
    path: '/VolumeDriver.Schedule.List',
    methods: ['GET', 'POST'],
    fields: [],
    async handle(_, { schedule, logger }) {
      if (await schedule.isPaused()) throw new ScheduleError('ERR_SCHEDULE_PAUSED', SCHEDULE_PAUSED_MESSAGE);
      const { entries, problems } = await schedule.read();
      for (const p of problems) logger.warning(`${schedule.path} line ${p.line} ignored: ${p.error}`);
      return {
        Schedule: entries.map((e) => ({ Name: e.name, Action: e.action, Timer: String(e.timer), Active: e.active ? 'True' : 'False' })),
      };
    },
  },
  {
    path: '/VolumeDriver.Schedule.Pause',
    methods: ['POST'],
    fields: [],
    async handle(_, { schedule }) {
      await schedule.pause();
      return {};
    },
  },
  {
    path: '/VolumeDriver.Schedule.Resume',
    methods: ['POST'],
    fields: [],
    async handle(_, { schedule }) {
      await schedule.resume();
      return {};
    },
  },
];
